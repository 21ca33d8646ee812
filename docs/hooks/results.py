"""MkDocs hook: publish the committed experiment results (results/) as pages of the site.

The run notes and plots stay where the experiments write them; the site reads them from
there, so the docs never hold a stale copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
PUBLISHED = [
    "results/lifeguard/README.md",
    "results/lifeguard/summary.md",
    "results/lifeguard/lifeguard.png",
    "results/lifeguard_short/README.md",
    "results/lifeguard_short/summary.md",
    "results/lifeguard_short/lifeguard.png",
    "results/map/README.md",
    "results/map/map.md",
    "results/map/map_fp_total.png",
    "results/map/map_detect_full_s.png",
    "results/map/map_bytes_per_member_s.png",
    "results/sim_scale/README.md",
    "results/hostile/README.md",
]


def on_files(files: Files, config: Any, **kwargs: Any) -> Files:
    for path in PUBLISHED:
        if not (ROOT / path).is_file():
            raise FileNotFoundError(f"docs hook: {path} is missing")
        files.append(File(path, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files
