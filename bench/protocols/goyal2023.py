"""Seed 002: Goyal et al., "Emotionally Enhanced Talking Face Generation" (supplementary
material).

- Dataset and split: CREMA-D, 5 arbitrarily chosen test actors (1011 among them, Sect. 4.1),
  all other actors train (Sect. 2.1): ``goyal2023`` in ``bench.data.splits``.
- Metrics (Sect. 6): EmoAcc of a video emotion classifier trained on the train split, with the
  requested emotion as the label (Sect. 6.1); LSE-C and LSE-D of the pre-trained SyncNet
  (Sect. 6.2, 6.2.1); FID of Inception features, averaged over the six emotion categories for
  the emotion models (Sect. 6.3: our ``fid`` column ``fid_emotion``).
- Generation: the model is video-based (Fig. 1, Sect. 9): masked frames of a video plus
  reference frames. The harness' adapters take one image, so a test clip is driven from its
  first aligned frame as a still video (our choice; SPEC 6 for ``emotion-wav2lip``). Each test
  clip is generated once per emotion: "We generate videos for all six emotions" (Fig. 4) and
  "those arbitrary emotions can be exploited as ground truth labels" (Sect. 6.1).
- Models compared (Sect. 5, Figs. 5-6, Sect. 6.2-6.3): the proposed emotion-conditioned
  Wav2Lip (``emotion-wav2lip``), Wav2Lip (Prajwal et al. [14]), Eskimez et al. [9]
  (``eskimez-emotion``), Audio2Head (Wang et al. [23]) and the video-to-video emotion
  translation of Magnusson et al. [13].
- Reported rows: the supplement has no results table; its one number is the emotion
  classifier's accuracy on the real test clips, "more than 90%" (Sect. 6.1), a reported
  ground-truth EmoAcc row marked as a lower bound.
"""

from bench.protocols.base import Generation, Paper, Protocol, ReportedRows

PROTOCOL = Protocol(
    name="goyal2023",
    version=1,
    description=("seed 002's evaluation: emotion accuracy of clips generated once per "
                 "emotion, lip sync (LSE-C/LSE-D) and FID on CREMA-D's 5-actor test split"),
    paper=Paper(
        seed="seed002",
        citation=("Goyal et al. Emotionally Enhanced Talking Face Generation (supplementary "
                  "material). 2023"),
        where="Sect. 2.1 (split), Sect. 4.1 (actor 1011), Sect. 6.1-6.3 (metrics), Fig. 4"),
    splits=(("crema-d", "goyal2023"),),
    metrics=("emoacc", "lse", "fid"),
    generation=Generation(
        identity="first-frame",
        identity_source=("the paper's model takes a video (masked frames plus reference "
                         "frames, Fig. 1, Sect. 9); driving a still video from the first "
                         "frame is our choice"),
        emotion_sweep=True,
        emotion_source="Sect. 6.1 and Fig. 4: every clip generated for all six emotions"),
    models=("emotion-wav2lip", "wav2lip", "eskimez-emotion", "audio2head", "magnusson2021"),
    reported=ReportedRows(source="seed002"),
    notes=(
        "LSE: the paper drives the CREMA-D videos with speech sampled from the internet in "
        "English and Hindi (Sect. 6.2); the harness uses each test clip's own audio",
        "LSE: the paper uses the pre-trained SyncNet of Chung and Zisserman (Sect. 6.2.1); "
        "without its weights the harness trains its own and names it",
        "FID: the paper averages over the six emotions (Sect. 6.3): the fid_emotion column",
    ),
)
