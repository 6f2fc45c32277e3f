"""Seed 004: Chen, Liu, Liu, Wang, "Talking head generation driven by speech-related facial
action units and audio", 2022.

- Datasets and splits: GRID 8:2 by speaker (27 train / 6 test) and TCD-TIMIT 49 train / 10
  test speakers (Sect. 4.1): ``chen2022au`` in ``bench.data.splits``.
- Metrics (Sect. 5.2, Tables 3-5): PSNR and SSIM; F1 score and accuracy of the speech-related
  AUs 10, 14, 20, 25 and 26, detected by OpenFace in every generated frame and compared with
  the ground-truth frames' labels (our ``au``: ``au_f1``, ``au_acc``).
- Generation: "We used the first frame of each video as input identity information" (Sect. 4.1;
  also Sect. 3.1, identity encoder). No emotion input.
- Models compared (Sect. 5.4, Table 5): CRAN (Song et al. [15]), Speech2Vid (Jamaludin et al.
  [67], ``speech2vid``), the L_rec-only baseline and the proposed TCSAN + Audio2AU model.
- Reported rows: Table 5, with Table 2 (the proposed model's frames judged by the AU classifier
  and by OpenFace) and Table 1 (the AU classifier on real GRID test frames) for the AU judge.
"""

from bench.protocols.base import Generation, Paper, Protocol, ReportedRows

PROTOCOL = Protocol(
    name="chen2022au",
    version=1,
    description=("seed 004's evaluation: PSNR, SSIM and speech-related AU F1/accuracy on GRID "
                 "and TCD-TIMIT (Table 5)"),
    paper=Paper(
        seed="seed004",
        citation=("Chen, Liu, Liu, Wang. Talking head generation driven by speech-related "
                  "facial action units and audio based on multimodal representation fusion. "
                  "2022"),
        where="Sect. 4.1 (splits, identity frame), Sect. 5.1-5.4 and Tables 1, 2, 5"),
    splits=(("grid", "chen2022au"), ("tcd-timit", "chen2022au")),
    metrics=("psnr", "ssim", "au"),
    generation=Generation(
        identity="first-frame",
        identity_source="the paper's rule: the first frame of each video (Sect. 4.1)",
        emotion_sweep=False,
        emotion_source="the models take no emotion input"),
    models=("au-tcsan", "cran", "speech2vid", "au-tcsan-baseline-lrec"),
    reported=ReportedRows(source="seed004", tables=("Table 5", "Table 2", "Table 1")),
    notes=(
        "AU labels: the paper detects AUs with OpenFace (Sect. 5.2); the harness uses OpenFace "
        "CSVs where the user has them, else its own detector, and names it",
    ),
)
