"""Encoder / decoder pairs by name: `ModelConfig.architecture` picks one, `architecture_options` sizes it.

A checkpoint stores the name and the options (plain JSON), never code, so a model rebuilds from
the file with ``torch.load(weights_only=True)`` as long as the name is registered in the running
process. facelib registers "small" (the Burgess et al. layout, `networks.py`) and "resnet" (the
residual networks of `resnet.py`); a user plugs in their own pair with `register_architecture`
(in their own module, imported before a model of it is built or loaded):

    def my_encoder(channels, image_size, latent_dim, **options): ...  # module: x -> (mu, logvar)
    def my_decoder(channels, image_size, latent_dim, **options): ...  # module: z -> pixel logits
    facelib.models.register_architecture("mine", my_encoder, my_decoder, defaults={"width": 64})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from facelib.models.networks import Decoder, Encoder
from facelib.registry import Registry
from facelib.models.resnet import ResidualDecoder, ResidualEncoder, check_resnet_options

__all__ = ["Architecture", "ARCHITECTURES", "register_architecture", "build_networks", "check_architecture"]


@dataclass(frozen=True)
class Architecture:
    """encoder / decoder: factories (channels, image_size, latent_dim, **options) -> nn.Module;
    check: options, image_size -> the options with defaults filled in (raises on bad ones)."""

    name: str
    encoder: Callable[..., nn.Module]
    decoder: Callable[..., nn.Module]
    check: Callable[[dict, int], dict]


#: Registered architectures by name.
ARCHITECTURES: Registry[Architecture] = Registry(
    "architecture", "A custom architecture must be registered with facelib.models.register_architecture (import "
    "the module that does it) before a model of it is built or loaded")


def _plain_check(name: str, defaults: dict[str, Any] | None) -> Callable[[dict, int], dict]:
    """Options checked against `defaults` (None: any option is passed through)."""
    def check(options: dict, image_size: int) -> dict:
        unknown = sorted(set(options) - set(defaults)) if defaults is not None else []
        if unknown:
            raise ValueError(f"architecture {name!r}: unknown option(s) {unknown}; known: {sorted(defaults or {})}"
                             + (" (its width is set by hidden_channels / hidden_dim)" if name == "small" else ""))
        return {**(defaults or {}), **options}
    return check


def register_architecture(name: str, encoder: Callable[..., nn.Module], decoder: Callable[..., nn.Module], *,
                          defaults: dict[str, Any] | None = None,
                          check: Callable[[dict, int], dict] | None = None, replace: bool = False) -> Architecture:
    """Register an encoder/decoder pair under `name` for `ModelConfig.architecture`.

    `defaults` are the options' default values (JSON-like; other option names are refused;
    None passes any option through), or
    `check(options, image_size) -> options` validates them. The encoder maps float images
    B x C x S x S to (mu, logvar), each B x latent_dim; the decoder maps B x latent_dim codes to
    pixel logits B x C x S x S. Registering a taken name needs `replace=True`.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"architecture name must be a non-empty string, got {name!r}")
    if not callable(encoder) or not callable(decoder):
        raise TypeError("encoder and decoder must be callables (channels, image_size, latent_dim, **options) -> module")
    arch = Architecture(name, encoder, decoder, check or _plain_check(name, None if defaults is None else dict(defaults)))
    return ARCHITECTURES.register(name, arch, replace=replace)


def check_architecture(name: str, options: dict | None, image_size: int) -> dict:
    """The options of architecture `name` with defaults filled in; clear errors for unknown names."""
    ARCHITECTURES.canonical(name)  # unknown names: the registry's error, listing the known ones
    if options is not None and not isinstance(options, dict):
        raise ValueError(f"architecture_options must be a dict of option -> value, got {options!r}")
    return ARCHITECTURES[name].check(dict(options or {}), image_size)


def build_networks(config: Any) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) of a `ModelConfig`."""
    c = config
    arch = ARCHITECTURES[c.architecture]
    options = arch.check(dict(c.architecture_options or {}), c.image_size)
    if c.architecture == "small":
        options = {"hidden_channels": c.hidden_channels, "hidden_dim": c.hidden_dim}
    return (arch.encoder(c.channels, c.image_size, c.latent_dim, **options),
            arch.decoder(c.channels, c.image_size, c.latent_dim, **options))


register_architecture("small", Encoder, Decoder, defaults={})
register_architecture("resnet", ResidualEncoder, ResidualDecoder, check=check_resnet_options)
