"""bench/whisper_probe.py's teacher forcing. CTranslate2 decodes the tokens a prompt adds after
whisper's task tokens as a forced prefix and returns their logits too, and how `max_length` counts
them is not documented (it is not one step per token): the probe's figures are only as good as
reading the right row for each token."""

from __future__ import annotations

import sys

import numpy as np

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

import whisper_probe  # noqa: E402


def test_forcing_whisper_own_greedy_words_reads_them_back_row_by_row(speech_dir):
    from faster_whisper.audio import decode_audio

    from pipeline.preprocess.weights import whisper_base_dir

    w = whisper_probe.Whisper(whisper_base_dir())
    encoded = w.encode(decode_audio(str(speech_dir / "beckett.wav"), sampling_rate=16000)[: 6 * 16000])
    free = w.model.generate(w.ct2.StorageView.from_array(encoded), [w.prefix("en")], beam_size=1, max_length=40)[0]
    greedy = free.sequences_ids[0]
    assert "tried" in w.tok.decode(greedy).lower()  # real speech, decoded
    cuts = [0, 1, 5, len(greedy) - 1]  # prompts of several lengths, in one call
    rows = w.forced_logprobs(encoded, [w.prefix("en") + greedy[:k] for k in cuts])
    for k, lp in zip(cuts, rows):
        assert lp.shape[0] == k + 1
        np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, rtol=1e-6)
        # row i is the distribution for token i given the ones before it: on the greedy path, its argmax is that token
        assert lp.argmax(axis=1).tolist() == greedy[:k + 1]
    # a text's log-probability is the sum along its rows, and whisper's own words beat another's
    own, other = w.text_logprob(encoded, "en", [w.tok.decode(greedy[:5]), " The cat sat on"])
    np.testing.assert_allclose(own, rows[2][np.arange(5), greedy[:5]].sum(), rtol=1e-9)
    assert own > other + 5
