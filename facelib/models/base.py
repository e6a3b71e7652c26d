"""`ModelConfig`, `BaseVAE` and the model registry.

Every model is a `BaseVAE` built from a dataclass config whose fields are JSON-like, so a
checkpoint can store ``model.name`` and ``dataclasses.asdict(model.config)`` and rebuild the
model with ``build_model(name, **fields)`` without executing code.

Likelihoods (``likelihood``):
  * ``"bernoulli"`` (default): pixel logits, -log p(x|z) is the binary cross-entropy with
    logits summed over pixels; x may be grey levels in [0, 1] (then it is a cross-entropy,
    not a likelihood of the 8-bit data).
  * ``"gaussian"``: mean sigmoid(logits) in [0, 1], standard deviation ``gaussian_scale``
    (fixed), or, with ``learn_scale=True``, a single learned scale initialised at
    ``gaussian_scale`` (kept within [1e-3, e^2]).

Every likelihood figure (`recon_nll`, the loss terms, `log_likelihood_is`) is on the 8-bit
scale of `facelib.models.units` (the Gaussian's density on [0, 1] minus D log 256 per image),
so a Gaussian decoder's bits per dimension lie in [0, 8]-ish; the two decoders' figures are
not comparable with each other (`units.scale_note`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator

import torch
from torch import nn

from facelib.models import losses, units
from facelib.models.architectures import build_networks, check_architecture
from facelib.registry import Registry

__all__ = ["ModelConfig", "BaseVAE", "Objective", "MODELS", "CONFIGS", "register", "unregister", "build_model", "latent_dim",
           "LOGVAR_RANGE"]

#: Registry: model name -> model class; filled by `register`.
MODELS: Registry[type["BaseVAE"]] = Registry(
    "model", "A model is a BaseVAE subclass with a `name`, decorated with @facelib.models.register "
    "in a module imported before it is built or loaded")
#: Registry: model name -> config dataclass.
CONFIGS: Registry[type["ModelConfig"]] = Registry("model config")

LIKELIHOODS = units.LIKELIHOODS
#: Where a posterior's log-variance is kept (`encode`, `train.refine_posterior`): exp(logvar) stays
#: finite in fp16 and fp32.
LOGVAR_RANGE = (-30.0, 20.0)
_LOG_SCALE_RANGE = (math.log(1e-3), 2.0)


def _check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{name} must be <= {hi}, got {value}")


def _check_weight(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass
class ModelConfig:
    """Fields shared by every model (all JSON-like, so `asdict` round-trips).

    image_size: side of the square input, an even number from 8 to 256 (faces: 32-256;
        small sizes serve patch models).
    channels: 1 (grey) or 3 (RGB).
    latent_dim: number of latents.
    hidden_channels / hidden_dim: conv width and dense width of the Burgess layout ("small").
    architecture: the encoder/decoder pair by name (`models.architectures`): "small" (Burgess
        et al.), "resnet" (residual networks for real faces) or one registered by the user.
    architecture_options: that architecture's options (JSON-like; e.g. resnet's width, depth,
        max_width, norm); None takes its defaults.
    likelihood: "bernoulli" or "gaussian" (see the module docstring).
    gaussian_scale / learn_scale: the Gaussian decoder's standard deviation, fixed or learned.
    """

    image_size: int = 64
    channels: int = 1
    latent_dim: int = 32
    hidden_channels: int = 32
    hidden_dim: int = 256
    likelihood: str = "bernoulli"
    gaussian_scale: float = 0.1
    learn_scale: bool = False
    architecture: str = "small"
    architecture_options: dict | None = None

    def __post_init__(self) -> None:
        _check_int("image_size", self.image_size)
        if self.image_size % 2 or not 8 <= self.image_size <= 256:
            raise ValueError(
                f"image_size must be an even number from 8 to 256, got {self.image_size}; "
                "resize the images (e.g. to 64) when loading the data set"
            )
        _check_int("channels", self.channels)
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {self.channels}")
        _check_int("latent_dim", self.latent_dim, lo=1)
        _check_int("hidden_channels", self.hidden_channels, lo=1)
        _check_int("hidden_dim", self.hidden_dim, lo=1)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {self.likelihood!r}")
        if isinstance(self.gaussian_scale, bool) or not isinstance(self.gaussian_scale, (int, float)) \
                or not self.gaussian_scale > 0 or not math.isfinite(self.gaussian_scale):
            raise ValueError(f"gaussian_scale must be a positive number, got {self.gaussian_scale!r}")
        self.gaussian_scale = float(self.gaussian_scale)
        if not isinstance(self.learn_scale, bool):
            raise ValueError(f"learn_scale must be True or False, got {self.learn_scale!r}")
        if not isinstance(self.architecture, str):
            raise ValueError(f"architecture must be a registered name, got {self.architecture!r}")
        check_architecture(self.architecture, self.architecture_options, self.image_size)
        if self.architecture_options is not None:
            self.architecture_options = dict(self.architecture_options)


def register(cls: type["BaseVAE"] | None = None, *, replace: bool = False) -> Any:
    """Class decorator adding a model (and its `config_class`) to `MODELS` / `CONFIGS` under its
    `name` (``@register``, or ``@register(replace=True)`` to replace a registered one)."""
    def add(model: type["BaseVAE"]) -> type["BaseVAE"]:
        MODELS.register(model.name, model, replace=replace)
        CONFIGS.register(model.name, model.config_class, replace=replace)
        return model
    return add if cls is None else add(cls)


def unregister(name: str) -> type["BaseVAE"]:
    """Remove a registered model (a test's temporary model)."""
    CONFIGS.unregister(name)
    return MODELS.unregister(name)


def latent_dim(model: nn.Module) -> int:
    """Number of latents of a model: `model.config.latent_dim` (facelib models) or `model.latent_dim`."""
    d = getattr(getattr(model, "config", None), "latent_dim", None) or getattr(model, "latent_dim", None)
    if not isinstance(d, int) or d < 1:
        raise TypeError(f"{type(model).__name__} has no config.latent_dim; pass a facelib model (see facelib.models)")
    return d


def build_model(name_or_config: "str | ModelConfig", **fields: Any) -> "BaseVAE":
    """Build a registered model from its name and config fields, or from a config instance.

    ``build_model("beta-vae", beta=4, latent_dim=10)``; ``build_model(config, latent_dim=8)``
    (fields override the instance's). Unknown names and fields raise ValueError.
    """
    if isinstance(name_or_config, ModelConfig):
        for name, cfg_cls in CONFIGS.items():
            if type(name_or_config) is cfg_cls:
                break
        else:
            raise ValueError(f"no registered model uses config class {type(name_or_config).__name__}")
        config = dataclasses.replace(name_or_config, **fields) if fields else name_or_config
        return MODELS[name](config)
    cls = MODELS[name_or_config]
    return cls(cls.make_config(**fields))


class BaseVAE(nn.Module):
    """A Gaussian-posterior VAE; its encoder/decoder pair is `config.architecture`.

    Subclasses set `name`, `config_class` and override `objective` (what is minimised, on
    top of the shared recon and KL terms); FactorVAE also overrides `objectives` and
    `configure_optimizers` for its discriminator.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: Trains on grouped batches (`batch["group"]`, `batch["varying"]`) unless told otherwise:
    #: what `fit(group_batches="auto")` reads (ModVAE sets it).
    trains_on_groups: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, **fields: Any):
        super().__init__()
        if config is None:
            config = self.make_config(**fields)
        elif fields:
            config = dataclasses.replace(config, **fields)
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}"
            )
        self.config = config
        c = config
        self.encoder, self.decoder = build_networks(c)
        if c.likelihood == "gaussian" and c.learn_scale:
            self.log_scale = nn.Parameter(torch.tensor(math.log(c.gaussian_scale)))
        else:
            self.log_scale = None
        self._n_dims = c.channels * c.image_size * c.image_size

    @classmethod
    def options_for_data(cls, options: dict[str, Any], data: Any) -> dict[str, Any]:
        """The config fields of this model for training on `data`, from a spec's model options
        (`facelib.experiment`): a model whose config depends on the data (ModVAE's blocks)
        fills it in here; the image size and channels are set by the caller."""
        return dict(options)

    @classmethod
    def make_config(cls, **fields: Any) -> ModelConfig:
        """The config dataclass from keyword fields, with a clear error for unknown ones."""
        allowed = {f.name for f in dataclasses.fields(cls.config_class)}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise ValueError(f"{cls.name}: unknown config fields {unknown}; allowed: {sorted(allowed)}")
        return cls.config_class(**fields)

    # -- hooks for the trainer -------------------------------------------------------
    def set_dataset_size(self, n: int) -> None:
        """Tell the model the training-set size; only models whose config has `dataset_size` use it."""
        if hasattr(self.config, "dataset_size"):
            _check_int("dataset_size", n, lo=1)
            self.config.dataset_size = int(n)

    def vae_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters trained by the VAE objective (all of them, except auxiliary nets)."""
        return self.parameters()

    def configure_optimizers(self, lr: float = 1e-4, weight_decay: float = 0.0) -> list[torch.optim.Optimizer]:
        """The optimizers of `objectives`, in order: one Adam here (AdamW, decoupled
        weight decay as Loshchilov & Hutter 2019, when `weight_decay` > 0)."""
        return [adam(self.vae_parameters(), lr, weight_decay)]

    def objectives(self) -> list["Objective"]:
        """The losses the trainer minimises, one per optimizer of `configure_optimizers` and in
        its order; here one, the model's `loss`."""
        return [Objective(self, self.loss)]

    # -- the model -------------------------------------------------------------------
    def check_input(self, x: torch.Tensor) -> torch.Tensor:
        """Raise a clear error unless x is a float batch of this model's image shape."""
        c = self.config
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor of images, got {type(x).__name__}")
        want = (c.channels, c.image_size, c.image_size)
        shape = "×".join(map(str, want))
        if x.ndim == 3 and tuple(x.shape) == want:
            raise ValueError(f"model expects a batch B×{shape}; add a batch dimension with x[None]")
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            got = "×".join(map(str, x.shape[1:] if x.ndim == 4 else x.shape))
            raise ValueError(
                f"model expects {shape} images (batch B×{shape}), got {got}"
                + ("" if x.ndim == 4 else f" (a {x.ndim}-d tensor)")
                + "; resize/convert the data set or build the model with matching image_size/channels"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"model expects float images in [0, 1], got {x.dtype}; use x.float() / 255 for uint8 images"
            )
        return x

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior parameters (mu, logvar), each B x latent_dim, for float x in [0, 1]."""
        mu, logvar = self.encoder(self.check_input(x))
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def _check_z(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.config.latent_dim:
            raise ValueError(
                f"latent codes must have shape B×{self.config.latent_dim}, got {'×'.join(map(str, z.shape))}"
            )
        return z

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output (pixel logits), B x C x S x S."""
        return self.decoder(self._check_z(z))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean image in [0, 1] for latent codes z (B x latent_dim)."""
        return torch.sigmoid(self.decode_logits(z))

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) (always samples, also in eval mode)."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        logits = self.decode_logits(z)
        return {"mu": mu, "logvar": logvar, "z": z, "x_logits": logits, "x_mean": torch.sigmoid(logits)}

    # -- likelihood and losses -------------------------------------------------------
    @property
    def n_dims(self) -> int:
        """Dimensions of one image, C * H * W (the D of bits per dimension)."""
        return self._n_dims

    def recon_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x | z) per image (B,), summed over pixels, on the 8-bit scale (`units.nll_8bit`)."""
        if self.config.likelihood == "bernoulli":
            nll = losses.bernoulli_nll(logits, x)
        else:
            if self.log_scale is not None:
                log_scale = self.log_scale.float().clamp(*_LOG_SCALE_RANGE)
            else:
                log_scale = math.log(self.config.gaussian_scale)
            nll = losses.gaussian_nll(torch.sigmoid(logits.float()), x, log_scale)
        return units.nll_8bit(nll, self._n_dims, self.config.likelihood)

    def _batch_x(self, batch: Any) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):
            return self.check_input(batch)
        if not isinstance(batch, dict) or "x" not in batch:
            raise TypeError("batch must be a dict with key 'x' (float images in [0, 1]) or an image tensor")
        return self.check_input(batch["x"])

    def forward_batch(self, batch: dict[str, Any], x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The forward pass used by `loss` (ModVAE passes the group information)."""
        return self.forward(x)

    def objective(self, batch: dict[str, Any], out: dict[str, torch.Tensor], recon: torch.Tensor,
                  kl_dims: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        """What is minimised, per image: here the negative ELBO. Returns at least 'loss' (B,)."""
        return {"loss": recon + kl_dims.sum(1)}

    def loss(self, batch: dict[str, Any], step: int = 0) -> dict[str, torch.Tensor]:
        """Loss terms as per-image means over the batch (scalars), signs as `units` says.

        loss: what is minimised (lower is better); recon_nll = -log p(x|z) summed over pixels
        (one z sample, 8-bit scale, lower is better); kl = KL(q(z|x) || p(z)) summed over
        latents (closed form); elbo_nats = -(recon_nll + kl), nats per image (higher is
        better); bits_per_dim = -elbo_nats / (C H W ln 2) (lower is better); plus the
        model's extras.
        """
        x = self._batch_x(batch)
        if not isinstance(batch, dict):
            batch = {"x": x}
        return self.terms(batch, x, self.forward_batch(batch, x), step)

    def terms(self, batch: dict[str, Any], x: torch.Tensor, out: dict[str, torch.Tensor],
              step: int = 0) -> dict[str, torch.Tensor]:
        """`loss` from an existing forward pass `out` (lets a training step reuse z)."""
        recon = self.recon_nll(out["x_logits"], x)
        kl_dims = losses.kl_normal_std(out["mu"].float(), out["logvar"].float())
        extra = self.objective(batch, out, recon, kl_dims, step)
        loss = extra.pop("loss")
        weight = batch.get("kl_weight") if isinstance(batch, dict) else None
        if weight is not None:  # KL warm-up: everything beyond the reconstruction term scaled by it
            loss = recon + float(weight) * (loss - recon)
        terms = {"loss": loss.mean(), "recon_nll": recon.mean(), "kl": kl_dims.sum(1).mean()}
        terms["elbo_nats"] = -(terms["recon_nll"] + terms["kl"])
        terms["bits_per_dim"] = units.bits_per_dim(terms["elbo_nats"], self._n_dims)
        for key, value in extra.items():
            terms[key] = value.mean() if value.ndim else value
        return terms

    # -- analysis helpers -------------------------------------------------------------
    @torch.no_grad()
    def kl_per_dim(self, batch_or_x: Any) -> torch.Tensor:
        """Mean KL per latent over a batch, (latent_dim,): orders latents by information."""
        mu, logvar = self.encode(self._batch_x(batch_or_x))
        return losses.kl_normal_std(mu.float(), logvar.float()).mean(0)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) per row, (B,), nats on the 8-bit scale."""
        return -self.recon_nll(self.decode_logits(z), x)

    @torch.no_grad()
    def log_likelihood_is(self, x: torch.Tensor, n_samples: int = 100, chunk: int = 1024) -> torch.Tensor:
        """Importance-sampled log p(x) per image (B,) in nats on the 8-bit scale (`units`;
        `units.bits_per_dim` turns it into bits per dimension), the posterior as proposal.

        ``log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x)``, z_k ~ q(z|x); a stochastic lower bound
        on log p(x) in expectation that tightens with K (Burda et al. 2016) and is at least the
        ELBO on average. `chunk` caps the images decoded at once.
        """
        _check_int("n_samples", n_samples, lo=1)
        x = self.check_input(x)
        b = x.shape[0]
        mu, logvar = self.encode(x)
        mu, logvar = losses._full(mu), losses._full(logvar)
        per_chunk = max(1, chunk // max(b, 1))
        log_w = []
        done = 0
        while done < n_samples:
            k = min(per_chunk, n_samples - done)
            eps = torch.randn(k, *mu.shape, device=mu.device, dtype=mu.dtype)
            z = mu + torch.exp(0.5 * logvar) * eps  # k x B x D
            xs = x.unsqueeze(0).expand(k, *x.shape).reshape(k * b, *x.shape[1:])
            zf = z.reshape(k * b, -1)
            lp = losses._full(self.log_px_given_z(xs, zf)).view(k, b)
            lp = lp + losses.log_standard_normal(z).sum(-1) - losses.log_normal(z, mu, logvar).sum(-1)
            log_w.append(lp)
            done += k
        log_w = torch.cat(log_w, 0)
        return torch.logsumexp(log_w, 0) - math.log(n_samples)

    def latent_names(self) -> list[str]:
        """What each latent is trained to carry ("" where the objective names nothing, as in
        every unsupervised model); figures label traversal rows with it."""
        return [""] * self.config.latent_dim

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


# -- helpers shared with subclasses --------------------------------------------------------
class Objective(nn.Module):
    """One loss of a model as a module: `forward(batch, step)` is `terms(batch, step)`, a dict of
    scalar loss terms in which `minimises` names the one its optimizer minimises; `net` holds
    the parameters the loss runs through.

    The trainer wraps each objective in torch's DistributedDataParallel when it trains in
    several processes, so every backward through it averages the gradients over them: nothing
    a model writes can leave that out. A non-scalar entry (FactorVAE's codes "z") is no loss
    term: the trainer hands it, detached, to the later objectives in their batch.
    """

    def __init__(self, net: nn.Module, terms: Callable[..., dict[str, torch.Tensor]], minimises: str = "loss"):
        super().__init__()
        self.net = net
        self.terms = terms
        self.minimises = minimises

    def forward(self, batch: dict[str, Any], step: int = 0) -> dict[str, torch.Tensor]:
        return self.terms(batch, step)


def adam(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, or AdamW (decoupled weight decay) when `weight_decay` > 0."""
    if weight_decay:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(params, lr=lr)
