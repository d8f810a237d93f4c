"""Built-in colour themes (public palettes) in the contract's shape.

Values for every theme except ``solarized-dark`` are copied verbatim from the
Maestro desktop app (pedramamini/Maestro, ``src/shared/themes.ts``).
``solarized-dark`` is not shipped by Maestro; it is derived from Ethan
Schoonover's official Solarized palette, mirroring Maestro's
``solarized-light`` mapping.
"""

from __future__ import annotations

import copy

DEFAULT_THEME_ID = "dracula"

THEMES: dict[str, dict] = {
    # Dark themes
    "dracula": {
        "id": "dracula",
        "name": "Dracula",
        "mode": "dark",
        "colors": {
            "bgMain": "#282a36",
            "bgSidebar": "#21222c",
            "bgActivity": "#343746",
            "border": "#44475a",
            "textMain": "#f8f8f2",
            "textDim": "#6272a4",
            "accent": "#bd93f9",
            "accentDim": "rgba(189, 147, 249, 0.2)",
            "accentText": "#ff79c6",
            "accentForeground": "#282a36",
            "success": "#50fa7b",
            "warning": "#ffb86c",
            "error": "#ff5555",
        },
    },
    "monokai": {
        "id": "monokai",
        "name": "Monokai",
        "mode": "dark",
        "colors": {
            "bgMain": "#272822",
            "bgSidebar": "#1e1f1c",
            "bgActivity": "#3e3d32",
            "border": "#49483e",
            "textMain": "#f8f8f2",
            "textDim": "#8f908a",
            "accent": "#fd971f",
            "accentDim": "rgba(253, 151, 31, 0.2)",
            "accentText": "#fdbf6f",
            "accentForeground": "#1e1f1c",
            "success": "#a6e22e",
            "warning": "#e6db74",
            "error": "#f92672",
        },
    },
    "nord": {
        "id": "nord",
        "name": "Nord",
        "mode": "dark",
        "colors": {
            "bgMain": "#2e3440",
            "bgSidebar": "#3b4252",
            "bgActivity": "#434c5e",
            "border": "#4c566a",
            "textMain": "#eceff4",
            "textDim": "#d8dee9",
            "accent": "#88c0d0",
            "accentDim": "rgba(136, 192, 208, 0.2)",
            "accentText": "#8fbcbb",
            "accentForeground": "#2e3440",
            "success": "#a3be8c",
            "warning": "#ebcb8b",
            "error": "#bf616a",
        },
    },
    "tokyo-night": {
        "id": "tokyo-night",
        "name": "Tokyo Night",
        "mode": "dark",
        "colors": {
            "bgMain": "#1a1b26",
            "bgSidebar": "#16161e",
            "bgActivity": "#24283b",
            "border": "#414868",
            "textMain": "#c0caf5",
            "textDim": "#9aa5ce",
            "accent": "#7aa2f7",
            "accentDim": "rgba(122, 162, 247, 0.2)",
            "accentText": "#7dcfff",
            "accentForeground": "#1a1b26",
            "success": "#9ece6a",
            "warning": "#e0af68",
            "error": "#f7768e",
        },
    },
    "catppuccin-mocha": {
        "id": "catppuccin-mocha",
        "name": "Catppuccin Mocha",
        "mode": "dark",
        "colors": {
            "bgMain": "#1e1e2e",
            "bgSidebar": "#181825",
            "bgActivity": "#313244",
            "border": "#45475a",
            "textMain": "#cdd6f4",
            "textDim": "#a6adc8",
            "accent": "#94e2d5",
            "accentDim": "rgba(148, 226, 213, 0.2)",
            "accentText": "#f5e0dc",
            "accentForeground": "#1e1e2e",
            "success": "#a6e3a1",
            "warning": "#fab387",
            "error": "#f38ba8",
        },
    },
    "gruvbox-dark": {
        "id": "gruvbox-dark",
        "name": "Gruvbox Dark",
        "mode": "dark",
        "colors": {
            "bgMain": "#282828",
            "bgSidebar": "#1d2021",
            "bgActivity": "#3c3836",
            "border": "#504945",
            "textMain": "#ebdbb2",
            "textDim": "#a89984",
            "accent": "#83a598",
            "accentDim": "rgba(131, 165, 152, 0.2)",
            "accentText": "#8ec07c",
            "accentForeground": "#1d2021",
            "success": "#b8bb26",
            "warning": "#fabd2f",
            "error": "#fb4934",
        },
    },
    # Not in Maestro: derived from the official Solarized palette
    # (base03 bg, base02 highlight, base0 body text, base01 comments, cyan accent).
    "solarized-dark": {
        "id": "solarized-dark",
        "name": "Solarized Dark",
        "mode": "dark",
        "colors": {
            "bgMain": "#002b36",
            "bgSidebar": "#00212b",
            "bgActivity": "#073642",
            "border": "#0a4a5a",
            "textMain": "#839496",
            "textDim": "#586e75",
            "accent": "#2aa198",
            "accentDim": "rgba(42, 161, 152, 0.2)",
            "accentText": "#2aa198",
            "accentForeground": "#002b36",
            "success": "#859900",
            "warning": "#b58900",
            "error": "#dc322f",
        },
    },
    # Light themes
    "github-light": {
        "id": "github-light",
        "name": "GitHub",
        "mode": "light",
        "colors": {
            "bgMain": "#ffffff",
            "bgSidebar": "#f6f8fa",
            "bgActivity": "#eff2f5",
            "border": "#d0d7de",
            "textMain": "#24292f",
            "textDim": "#57606a",
            "accent": "#0969da",
            "accentDim": "rgba(9, 105, 218, 0.1)",
            "accentText": "#0969da",
            "accentForeground": "#ffffff",
            "success": "#1a7f37",
            "warning": "#9a6700",
            "error": "#cf222e",
        },
    },
    "solarized-light": {
        "id": "solarized-light",
        "name": "Solarized",
        "mode": "light",
        "colors": {
            "bgMain": "#fdf6e3",
            "bgSidebar": "#eee8d5",
            "bgActivity": "#e6dfc8",
            "border": "#d3cbb7",
            "textMain": "#657b83",
            "textDim": "#93a1a1",
            "accent": "#2aa198",
            "accentDim": "rgba(42, 161, 152, 0.1)",
            "accentText": "#2aa198",
            "accentForeground": "#fdf6e3",
            "success": "#859900",
            "warning": "#b58900",
            "error": "#dc322f",
        },
    },
    "one-light": {
        "id": "one-light",
        "name": "One Light",
        "mode": "light",
        "colors": {
            "bgMain": "#fafafa",
            "bgSidebar": "#eaeaeb",
            "bgActivity": "#dbdbdc",
            "border": "#c8c8c9",
            "textMain": "#383a42",
            "textDim": "#696c77",
            "accent": "#a626a4",
            "accentDim": "rgba(166, 38, 164, 0.1)",
            "accentText": "#0184bc",
            "accentForeground": "#ffffff",
            "success": "#50a14f",
            "warning": "#c18401",
            "error": "#e45649",
        },
    },
    "gruvbox-light": {
        "id": "gruvbox-light",
        "name": "Gruvbox Light",
        "mode": "light",
        "colors": {
            "bgMain": "#fbf1c7",
            "bgSidebar": "#ebdbb2",
            "bgActivity": "#d5c4a1",
            "border": "#bdae93",
            "textMain": "#3c3836",
            "textDim": "#7c6f64",
            "accent": "#458588",
            "accentDim": "rgba(69, 133, 136, 0.1)",
            "accentText": "#076678",
            "accentForeground": "#fbf1c7",
            "success": "#98971a",
            "warning": "#d79921",
            "error": "#cc241d",
        },
    },
    "catppuccin-latte": {
        "id": "catppuccin-latte",
        "name": "Catppuccin Latte",
        "mode": "light",
        "colors": {
            "bgMain": "#eff1f5",
            "bgSidebar": "#e6e9ef",
            "bgActivity": "#dce0e8",
            "border": "#acb0be",
            "textMain": "#4c4f69",
            "textDim": "#6c6f85",
            "accent": "#8839ef",
            "accentDim": "rgba(136, 57, 239, 0.12)",
            "accentText": "#ea76cb",
            "accentForeground": "#ffffff",
            "success": "#40a02b",
            "warning": "#fe640b",
            "error": "#d20f39",
        },
    },
    "ayu-light": {
        "id": "ayu-light",
        "name": "Ayu Light",
        "mode": "light",
        "colors": {
            "bgMain": "#fafafa",
            "bgSidebar": "#f3f4f5",
            "bgActivity": "#e7e8e9",
            "border": "#d9d9d9",
            "textMain": "#5c6166",
            "textDim": "#828c99",
            "accent": "#55b4d4",
            "accentDim": "rgba(85, 180, 212, 0.1)",
            "accentText": "#399ee6",
            "accentForeground": "#1a1a1a",
            "success": "#86b300",
            "warning": "#f2ae49",
            "error": "#f07171",
        },
    },
}


def get_theme(theme_id: str) -> dict | None:
    """Return a deep copy of the theme with ``theme_id``, or None if unknown."""
    theme = THEMES.get(theme_id)
    return copy.deepcopy(theme) if theme is not None else None


def list_themes() -> list[dict]:
    """Return deep copies of all built-in themes, dark first then light."""
    return [copy.deepcopy(theme) for theme in THEMES.values()]
