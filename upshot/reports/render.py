"""Charts to PNG and SVG, and the Vega JavaScript to inline, through vl-convert.

vl-convert embeds its own copies of Vega, Vega-Lite and vega-embed (no browser, no
network), so the files come out the same on every machine with the same version.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from upshot.errors import UpshotError

PNG_SCALE = 2  # crisp on high-density screens and in e-mail clients


@cache
def vl_version() -> str:
    """The Vega-Lite version vl-convert should use: Altair's, or the nearest it ships."""
    import altair as alt
    import vl_convert as vlc

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    available = vlc.get_vegalite_versions()
    if wanted in available:
        return wanted

    def key(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    older = [v for v in available if key(v) <= key(wanted)]
    return max(older or available, key=key)


def to_svg(spec: dict[str, Any]) -> str:
    import vl_convert as vlc

    try:
        return str(vlc.vegalite_to_svg(spec, vl_version=vl_version()))
    except Exception as exc:  # vl-convert raises ValueError with the Vega error inside
        raise UpshotError(f"cannot render chart to SVG: {str(exc).splitlines()[0]}") from None


def to_png(spec: dict[str, Any], scale: float = PNG_SCALE) -> bytes:
    import vl_convert as vlc

    try:
        return bytes(vlc.vegalite_to_png(spec, vl_version=vl_version(), scale=scale))
    except Exception as exc:
        raise UpshotError(f"cannot render chart to PNG: {str(exc).splitlines()[0]}") from None


def write_images(name: str, spec: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """`directory/name.png` and `directory/name.svg`."""
    directory.mkdir(parents=True, exist_ok=True)
    png, svg = directory / f"{name}.png", directory / f"{name}.svg"
    png.write_bytes(to_png(spec))
    svg.write_text(to_svg(spec), encoding="utf-8")
    return png, svg


@cache
def javascript() -> str:
    """Vega, Vega-Lite and vega-embed in one script, exposing `vegaEmbed` globally.

    Built once per process (it takes a few seconds); a few hundred kilobytes minified.
    """
    import vl_convert as vlc

    # the stub marks `snippet` required, but None (the default snippet) is what we want
    bundle = vlc.javascript_bundle(vl_version=vl_version())  # type: ignore[call-arg]
    return str(bundle)
