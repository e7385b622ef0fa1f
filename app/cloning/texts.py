"""Fixed texts the clone pipeline has the base voice read.

Three different texts, so that nothing is scored on what it was tuned on:
- SOURCE_PASSAGE (~30 s): the base voice's own statistics (F0, long-term envelope, formants).
- CALIBRATION_TEXT (~6 s): converted once per candidate profile while tuning, when the upload
  holds too few words to read the person's own (app.cloning.pipeline.hear_upload).
- TEST_TEXT (~7 s): spoken with the finished voice and compared with the held-out audio. Three
  sentences: with two (~4 s) the score was too noisy to tell the clone from its base (the test
  speaker's clone scored 0.722 against the base's 0.731 with two, and above it with four). Over
  18 LibriSpeech clones these three scored as the four before them did (mean +0.0006, sd 0.010;
  two sentences: sd 0.019), for a quarter less of the job's reading and rendering
  (docs/benchmarks.md, stop 42).
Harvard sentences (IEEE 1969, public domain) are phonetically balanced, so short passages
cover the vowel space that formant and envelope statistics need.
"""

from __future__ import annotations

SOURCE_PASSAGE = (
    "A small boat drifted slowly toward the quiet harbour as the evening light faded over the hills. "
    "On the pier, an old fisherman was mending his nets and humming a tune nobody else remembered. "
    "Children ran along the sand, shouting at the gulls and daring each other to touch the cold water. "
    "Behind them, the bakery was pulling the last warm loaves out of the oven before closing for the night. "
    "By the time the first stars appeared, the village had settled into its usual calm, "
    "and only the sound of the waves could be heard against the rocks. "
    "Tomorrow the market would open early, and everyone would be back to their busy routines."
)

CALIBRATION_TEXT = (
    "The small pup gnawed a hole in the sock. The fish twisted and turned on the bent hook. "
    "Press the pants and sew a button on the vest."
)

TEST_TEXT = (
    "A rod is used to catch pink salmon. "
    "The source of the huge river is the clear spring. Help the woman get back to her feet."
)
