"""Seed 003: Vougioukas, Petridis and Pantic, "Realistic speech-driven facial animation with
GANs", IJCV 2019.

- Datasets and splits: GRID, TCD-TIMIT and CREMA-D, test subjects of Table 1, splits of Sect. 4
  and Table 2 (``vougioukas2019`` in ``bench.data.splits``). LRW is also used in the paper but
  is not a harness dataset.
- Metrics (Sect. 5, Table 6): PSNR, SSIM (reconstruction), CPBD (sharpness), ACD with OpenFace
  embeddings (identity), WER of a pre-trained LipNet (GRID only: "A pretrained LipNet model is
  only available for the GRID dataset", note under Table 6), AV offset and AV confidence of
  SyncNet (our ``lse``: ``av_offset`` and ``lse_c``), blinks/s and blink duration from the
  EAR blink detector (our ``blinks``).
- Generation: "a single still image and an audio signal" (Sect. 1, Sect. 3.1); which frame of a
  test clip is the still image is not stated (Sect. 6.2 only calls it "the initial frame"
  once, Fig. 17), so the first aligned frame is our choice. No emotion input.
- Models compared (Sect. 6.3, Table 6): the proposed temporal GAN (``vougioukas``), the
  static GAN baseline (``static-gan``) and Speech2Vid (``speech2vid``); ATVGNet is compared
  on LRW only.
- Reported rows: Table 6, and the ground-truth numbers of Table 5 (GRID) and Table 4 (blinks
  of the real videos of each dataset).
"""

from bench.protocols.base import Generation, Paper, Protocol, ReportedRows

PROTOCOL = Protocol(
    name="vougioukas2019",
    version=1,
    description=("seed 003's evaluation: frame quality, sharpness, identity, lip-reading, "
                 "audio-visual sync and blinks on GRID, TCD-TIMIT and CREMA-D (Table 6)"),
    paper=Paper(
        seed="seed003",
        citation=("Vougioukas, Petridis, Pantic. Realistic speech-driven facial animation "
                  "with GANs. IJCV 2019"),
        where="Sect. 4 and Tables 1-2 (splits), Sect. 5 (metrics), Sect. 6.3 and Tables 4-6"),
    splits=(("grid", "vougioukas2019"), ("tcd-timit", "vougioukas2019"),
            ("crema-d", "vougioukas2019")),
    metrics=("psnr", "ssim", "cpbd", "acd", "lse", "blinks", "wer"),
    generation=Generation(
        identity="first-frame",
        identity_source=("the paper drives one still image (Sect. 3.1) and does not say which "
                         "frame of a test clip; the first frame is our choice"),
        emotion_sweep=False,
        emotion_source="the models take no emotion input"),
    models=("vougioukas", "static-gan", "speech2vid"),
    reported=ReportedRows(source="seed003", tables=("Table 6", "Table 5", "Table 4")),
    notes=(
        "ACD: the paper embeds faces with OpenFace (reported column acd_openface); the harness "
        "uses dlib's face embedding (column acd), so the two are not on one scale",
        "AV offset and AV confidence are lse's av_offset and lse_c; the paper does not "
        "report LSE-D",
    ),
)
