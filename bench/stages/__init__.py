"""The stages of a run (SPEC 7), one module each, sequenced by `bench.runner`:

1. `workspace`: open the dataset, apply the split, preprocess parts on demand (cached per clip
   by `bench.data.preprocess`);
2. `judges`: train the learned judges the metrics need and lack, report their quality;
3. `train`: fit a model on the train part, or load its checkpoint;
4. `generate`: generate every test clip (and, for EmoAcc, once per emotion);
5. `score`: every metric on every clip, cached per clip;
6. `summarise`: per-model summaries with provenance, then the leaderboard.

Every stage reads and writes its results through `bench.core.cache`: one file per record,
keyed by everything the record depends on, written atomically.
"""
