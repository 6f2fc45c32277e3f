"""Numbers the source papers report, to show beside ours in leaderboards (SPEC 8).

Transcribed by hand from the tables of the seed papers; each row names its source table.
Metric names are the harness" column names (``lse_c`` is what seed 003 calls "AV confidence"
and seed 001 "SyncNet confidence"; ``acd_openface`` is ACD with OpenFace embeddings, a scale
not comparable with other embedders).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reported:
    """One reported value."""

    source: str  # "seed003"
    table: str  # "Table 6"
    dataset: str  # "crema-d"
    split: str  # e.g. "vougioukas2019 test"
    model: str  # talkbench adapter name where one exists
    metric: str  # harness column name
    value: float

PAPERS = {
    "seed000": "Bhagat et al. 2022, deformable emotional talking faces",
    "seed001": "Das et al. 2022, Ventriloquist-Net",
    "seed002": "Goyal et al. 2023, emotionally enhanced talking faces",
    "seed003": "Vougioukas et al. 2019 (IJCV), realistic speech-driven facial animation",
    "seed004": "Chen et al. 2022, AU-driven talking heads",
}

_S = "vougioukas2019 test"
_HS = "bhagat2022 test (happy/sad)"
_C = "chen2022au test"
_JC = "au-tcsan (AU classifier judge)"
_JO = "au-tcsan (OpenFace judge)"

# (source, table, dataset, split, model, metric, value)
_ROWS: list[tuple[str, str, str, str, str, str, float]] = [
    ("seed003", "Table 6", "grid", _S, "vougioukas", "psnr", 27.1),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "ssim", 0.818),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "cpbd", 0.268),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "acd_openface", 0.000147),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "wer_lipnet", 23.1),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "av_offset", 1.0),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "lse_c", 7.4),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "blinks_per_s", 0.45),
    ("seed003", "Table 6", "grid", _S, "vougioukas", "blink_duration_s", 0.36),
    ("seed003", "Table 6", "grid", _S, "static-gan", "psnr", 27.023),
    ("seed003", "Table 6", "grid", _S, "static-gan", "ssim", 0.811),
    ("seed003", "Table 6", "grid", _S, "static-gan", "cpbd", 0.249),
    ("seed003", "Table 6", "grid", _S, "static-gan", "acd_openface", 0.000142),
    ("seed003", "Table 6", "grid", _S, "static-gan", "wer_lipnet", 36.4),
    ("seed003", "Table 6", "grid", _S, "static-gan", "av_offset", 2.0),
    ("seed003", "Table 6", "grid", _S, "static-gan", "lse_c", 6.5),
    ("seed003", "Table 6", "grid", _S, "static-gan", "blinks_per_s", 0.04),
    ("seed003", "Table 6", "grid", _S, "static-gan", "blink_duration_s", 0.29),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "psnr", 22.662),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "ssim", 0.72),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "cpbd", 0.255),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "acd_openface", 0.000148),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "wer_lipnet", 58.2),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "av_offset", 1.0),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "lse_c", 5.3),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "blinks_per_s", 0.0),
    ("seed003", "Table 6", "grid", _S, "speech2vid", "blink_duration_s", 0.0),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "psnr", 24.243),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "ssim", 0.73),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "cpbd", 0.308),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "acd_openface", 0.000176),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "av_offset", 1.0),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "lse_c", 5.5),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "blinks_per_s", 0.19),
    ("seed003", "Table 6", "tcd-timit", _S, "vougioukas", "blink_duration_s", 0.33),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "psnr", 24.187),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "ssim", 0.711),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "cpbd", 0.231),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "acd_openface", 0.000177),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "av_offset", 8.0),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "lse_c", 1.4),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "blinks_per_s", 0.08),
    ("seed003", "Table 6", "tcd-timit", _S, "static-gan", "blink_duration_s", 0.13),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "psnr", 20.305),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "ssim", 0.658),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "cpbd", 0.211),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "acd_openface", 0.000181),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "av_offset", 1.0),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "lse_c", 4.6),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "blinks_per_s", 0.0),
    ("seed003", "Table 6", "tcd-timit", _S, "speech2vid", "blink_duration_s", 0.0),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "psnr", 23.565),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "ssim", 0.7),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "cpbd", 0.216),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "acd_openface", 0.00014),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "av_offset", 2.0),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "lse_c", 5.5),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "blinks_per_s", 0.25),
    ("seed003", "Table 6", "crema-d", _S, "vougioukas", "blink_duration_s", 0.26),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "psnr", 22.933),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "ssim", 0.685),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "cpbd", 0.212),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "acd_openface", 0.000165),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "av_offset", 2.0),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "lse_c", 5.2),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "blinks_per_s", 0.11),
    ("seed003", "Table 6", "crema-d", _S, "static-gan", "blink_duration_s", 0.13),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "psnr", 22.19),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "ssim", 0.7),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "cpbd", 0.217),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "acd_openface", 0.000173),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "av_offset", 1.0),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "lse_c", 4.7),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "blinks_per_s", 0.0),
    ("seed003", "Table 6", "crema-d", _S, "speech2vid", "blink_duration_s", 0.0),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "cpbd", 0.276),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "acd_openface", 9.8e-05),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "wer_lipnet", 21.76),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "av_offset", 1.0),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "lse_c", 7.0),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "blinks_per_s", 0.39),
    ("seed003", "Table 5", "grid", _S, "ground-truth", "blink_duration_s", 0.41),
    ("seed003", "Table 4", "grid", "whole dataset", "ground-truth", "blinks_per_s", 0.39),
    ("seed003", "Table 4", "grid", "whole dataset", "ground-truth", "blink_duration_s", 0.4),
    ("seed003", "Table 4", "tcd-timit", "whole dataset", "ground-truth", "blinks_per_s", 0.28),
    ("seed003", "Table 4", "tcd-timit", "whole dataset", "ground-truth", "blink_duration_s", 0.2),
    ("seed003", "Table 4", "crema-d", "whole dataset", "ground-truth", "blinks_per_s", 0.26),
    ("seed003", "Table 4", "crema-d", "whole dataset", "ground-truth", "blink_duration_s", 0.36),
    ("seed000", "Table I", "crema-d", _HS, "vougioukas", "psnr", 22.01),
    ("seed000", "Table I", "crema-d", _HS, "vougioukas", "ssim", 0.61),
    ("seed000", "Table I", "crema-d", _HS, "eskimez-emotion", "psnr", 22.94),
    ("seed000", "Table I", "crema-d", _HS, "eskimez-emotion", "ssim", 0.63),
    ("seed000", "Table I", "crema-d", _HS, "deformable-emotion", "psnr", 23.57),
    ("seed000", "Table I", "crema-d", _HS, "deformable-emotion", "ssim", 0.65),
    ("seed004", "Table 5", "grid", _C, "cran", "psnr", 28.041),
    ("seed004", "Table 5", "grid", _C, "cran", "ssim", 0.694),
    ("seed004", "Table 5", "grid", _C, "cran", "au_f1", 0.71),
    ("seed004", "Table 5", "grid", _C, "cran", "au_acc", 78.71),
    ("seed004", "Table 5", "grid", _C, "speech2vid", "psnr", 28.863),
    ("seed004", "Table 5", "grid", _C, "speech2vid", "ssim", 0.755),
    ("seed004", "Table 5", "grid", _C, "speech2vid", "au_f1", 0.738),
    ("seed004", "Table 5", "grid", _C, "speech2vid", "au_acc", 78.97),
    ("seed004", "Table 5", "grid", _C, "au-tcsan-baseline-lrec", "psnr", 28.681),
    ("seed004", "Table 5", "grid", _C, "au-tcsan-baseline-lrec", "ssim", 0.746),
    ("seed004", "Table 5", "grid", _C, "au-tcsan-baseline-lrec", "au_f1", 0.725),
    ("seed004", "Table 5", "grid", _C, "au-tcsan-baseline-lrec", "au_acc", 77.77),
    ("seed004", "Table 5", "grid", _C, "au-tcsan", "psnr", 29.971),
    ("seed004", "Table 5", "grid", _C, "au-tcsan", "ssim", 0.772),
    ("seed004", "Table 5", "grid", _C, "au-tcsan", "au_f1", 0.751),
    ("seed004", "Table 5", "grid", _C, "au-tcsan", "au_acc", 81.15),
    ("seed004", "Table 5", "tcd-timit", _C, "cran", "psnr", 24.381),
    ("seed004", "Table 5", "tcd-timit", _C, "cran", "ssim", 0.65),
    ("seed004", "Table 5", "tcd-timit", _C, "cran", "au_f1", 0.562),
    ("seed004", "Table 5", "tcd-timit", _C, "cran", "au_acc", 81.41),
    ("seed004", "Table 5", "tcd-timit", _C, "speech2vid", "psnr", 25.132),
    ("seed004", "Table 5", "tcd-timit", _C, "speech2vid", "ssim", 0.685),
    ("seed004", "Table 5", "tcd-timit", _C, "speech2vid", "au_f1", 0.556),
    ("seed004", "Table 5", "tcd-timit", _C, "speech2vid", "au_acc", 81.91),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan-baseline-lrec", "psnr", 25.003),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan-baseline-lrec", "ssim", 0.717),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan-baseline-lrec", "au_f1", 0.545),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan-baseline-lrec", "au_acc", 80.96),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan", "psnr", 26.601),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan", "ssim", 0.76),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan", "au_f1", 0.59),
    ("seed004", "Table 5", "tcd-timit", _C, "au-tcsan", "au_acc", 86.51),
    ("seed004", "Table 2", "grid", _C, _JC, "au_f1", 0.745),
    ("seed004", "Table 2", "grid", _C, _JC, "au_acc", 79.43),
    ("seed004", "Table 2", "grid", _C, _JO, "au_f1", 0.751),
    ("seed004", "Table 2", "grid", _C, _JO, "au_acc", 80.56),
    ("seed004", "Table 2", "tcd-timit", _C, _JC, "au_f1", 0.5),
    ("seed004", "Table 2", "tcd-timit", _C, _JC, "au_acc", 89.26),
    ("seed004", "Table 2", "tcd-timit", _C, _JO, "au_f1", 0.59),
    ("seed004", "Table 2", "tcd-timit", _C, _JO, "au_acc", 86.51),
    ("seed004", "Table 1", "grid", _C, "AU classifier on real frames", "au_f1", 0.871),
    ("seed004", "Table 1", "grid", _C, "AU classifier on real frames", "au_acc", 89.62),
    ("seed001", "Sect. 3.3", "voxceleb2", "official test", "ventriloquist", "lse_c", 2.08),
    ("seed001", "Sect. 3.3", "voxceleb2", "official test", "makeittalk", "lse_c", 2.8),
    ("seed001", "Sect. 3.3", "voxceleb2", "official test", "pc-avs", "lse_c", 5.9),
]

REPORTED: tuple[Reported, ...] = tuple(Reported(*row) for row in _ROWS)


def reported_for(dataset: str) -> list[Reported]:
    """Every reported value for ``dataset`` (harness dataset name)."""
    return [r for r in REPORTED if r.dataset == dataset]
