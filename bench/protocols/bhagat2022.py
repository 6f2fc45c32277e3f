"""Seed 000: Bhagat et al., "Emotional talking face generation using deformable convolutional
networks", 2022.

- Dataset and split: CREMA-D, Happy and Sad clips of randomly chosen actors, 520 videos,
  80/10/10 (Sect. IV.A): ``bhagat2022`` in ``bench.data.splits``.
- Metrics (Sect. IV.D, Table I): PSNR and SSIM against the ground-truth frames.
- Generation: the generator takes "the input condition face image" (Sect. III.A.1) and an
  emotion label (Sect. III.A.3); the paper does not say which frame is the condition image, so
  the first aligned frame is our choice, and each test clip is generated once with its own
  emotion (PSNR/SSIM compare with the clip's own frames; no per-emotion sweep is reported).
- Models compared (Table I): Vougioukas et al. [10] (``vougioukas``), Eskimez et al. [24]
  (``eskimez-emotion``, the paper loads the authors' pre-trained model, Sect. IV.C) and the
  proposed deformable model (``deformable-emotion``).
- Reported rows: Table I.
"""

from bench.protocols.base import Generation, Paper, Protocol, ReportedRows

PROTOCOL = Protocol(
    name="bhagat2022",
    version=1,
    description="seed 000's evaluation: PSNR and SSIM on CREMA-D's Happy/Sad subset (Table I)",
    paper=Paper(
        seed="seed000",
        citation=("Bhagat et al. Emotional talking face generation using deformable convolutional "
                  "networks. 2022"),
        where="Sect. IV.A (data and split), Sect. IV.C-D and Table I"),
    splits=(("crema-d", "bhagat2022"),),
    metrics=("psnr", "ssim"),
    generation=Generation(
        identity="first-frame",
        identity_source=("the paper conditions on one face image (Sect. III.A.1) and does not "
                         "say which frame; the first frame is our choice"),
        emotion_sweep=False,
        emotion_source=("our choice: PSNR/SSIM are computed against the clip itself, so each "
                        "clip is generated with its own label")),
    models=("vougioukas", "eskimez-emotion", "deformable-emotion"),
    reported=ReportedRows(source="seed000", tables=("Table I",)),
    notes=(
        "the paper trains every model for the same amount of time (Sect. IV.B); budgets here "
        "are step counts per model",
    ),
)
