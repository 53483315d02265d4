"""Stage 2 on real media: ASR accuracy and word timings, faces and expressions, prosody, timeline."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import jiwer
import numpy as np
import pytest

from pipeline.preprocess.asr import Transcriber, get_transcriber
from pipeline.preprocess.faces import au_proxies, geometry, get_face_analyzer
from pipeline.preprocess.stage import frame_times, preprocess_source
from pipeline.preprocess.timeline import ClipTimeline
from pipeline.preprocess.weights import WHISPER_BASE_SHA256, whisper_base_dir
from pipeline.sampling.decode import decode_once
from pipeline.sampling.media import file_sha256
from pipeline.sampling.stage import sample_source
from schemas import ConfigError, load_config

REFERENCE = json.loads((Path(__file__).parent / "data" / "reference_phrases.json").read_text())
TRUTH = {
    "beckett.wav": "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better.",
    "two_cities.wav": " ".join(p[0] for p in REFERENCE["two_cities.wav"]),
}
POSED = {"0-f1-su-ph.jpg": "surprise", "0-f15-hao-ph.jpg": "happiness", "15-f13-anc-ph.jpg": "anger", "45-m7-di-ph.jpg": "disgust"}


def wer(truth: str, hyp: str) -> float:
    tf = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return jiwer.wer(truth, hyp, reference_transform=tf, hypothesis_transform=tf)


@pytest.mark.slow  # loads whisper
def test_packaged_whisper_model_is_assembled_and_verified():
    d = whisper_base_dir()
    assert (d / "model.bin").stat().st_size > 100_000_000
    assert (d / ".verified").read_text() == WHISPER_BASE_SHA256


@pytest.mark.slow  # loads whisper
@pytest.mark.parametrize("name", ["beckett.wav", "two_cities.wav"])
def test_offline_asr_word_error_rate_is_at_most_ten_percent(speech_dir, config, name):
    audio = decode_once(speech_dir / name, []).audio
    language, words = get_transcriber(config.preprocess.asr).transcribe(audio, offset=100.0)
    assert language == "en"
    hyp = " ".join(w.text for w in words)
    assert wer(TRUTH[name], hyp) <= 0.10, hyp
    # word times sit on the source timeline (offset applied), in order, inside the audio
    times = [(w.start, w.end) for w in words]
    assert all(100.0 <= s <= e <= 100.0 + audio.size / 16000 + 0.5 for s, e in times)
    assert [s for s, _ in times] == sorted(s for s, _ in times)


@pytest.mark.slow  # loads whisper
def test_detecting_the_language_costs_no_second_encoder_pass(speech_dir, config, monkeypatch):
    from faster_whisper import WhisperModel

    asr = get_transcriber(config.preprocess.asr)
    audio = decode_once(speech_dir / "beckett.wav", []).audio  # 10 s: one window
    passes = []
    real = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, f: passes.append(1) or real(self, f))
    asr.model._last = None
    detected = asr.transcribe_encoded(audio, offset=0.0)
    assert detected.language == "en" and len(passes) == 1
    # the same words as when the language is given
    given = asr.transcribe_encoded(audio, offset=0.0, language="en")
    assert [w.text for w in detected.words] == [w.text for w in given.words]
    # a detected language keeps whisper's probability for it (ten seconds of clear English: sure of
    # it); a given one has none, as nothing was detected
    assert 0.9 < detected.language_probability <= 1.0 and given.language_probability is None


@pytest.mark.slow  # loads whisper
def test_word_times_match_the_reference_phrases(speech_dir, config):
    audio = decode_once(speech_dir / "beckett.wav", []).audio
    _, words = get_transcriber(config.preprocess.asr).transcribe(audio, offset=0.0)
    better = [w for w in words if w.text.lower().startswith("better")]
    assert better and abs(better[-1].end - REFERENCE["beckett.wav"][-1][2]) < 0.4


@pytest.mark.parametrize("photo", sorted(POSED))
def test_a_face_with_landmarks_is_found_in_each_posed_photo(feat_data, config, photo):
    faces = get_face_analyzer(config.preprocess.faces).analyse(cv2.imread(str(feat_data / photo)))
    assert len(faces) == 1
    f = faces[0]
    assert len(f.landmarks) == 68 and f.bbox.width > 150
    assert abs(sum(p.prob for p in f.expression) - 1.0) < 0.02
    assert {a.au for a in f.action_units} >= {"AU04", "AU12", "AU25"}


def test_expression_model_on_posed_photos(feat_data, config):
    """On an eye-aligned crop fer's CNN gets surprise, happiness and disgust right (3 of 4, the
    issue's goal); the detector-box crop it replaced got only the first two. Anger still reads as
    sadness."""
    analyzer = get_face_analyzer(config.preprocess.faces)
    top = {}
    for photo, truth in POSED.items():
        f = analyzer.analyse(cv2.imread(str(feat_data / photo)))[0]
        top[photo] = max(f.expression, key=lambda p: p.prob).label
    correct = [p for p, truth in POSED.items() if top[p] == truth]
    assert set(correct) >= {"0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "45-m7-di-ph.jpg"}, top


def test_aligned_crop_levels_the_eyes(feat_data, config):
    """A photo rotated by 15 degrees gives (nearly) the same aligned crop, so the same expression."""
    from pipeline.preprocess.faces import aligned_crop

    analyzer = get_face_analyzer(config.preprocess.faces)
    img = cv2.imread(str(feat_data / "0-f15-hao-ph.jpg"))
    h, w = img.shape[:2]
    turned = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 15, 1.0), (w, h), borderMode=cv2.BORDER_REPLICATE)
    crops = []
    for im in (img, turned):
        f = analyzer.analyse(im)[0]
        assert max(f.expression, key=lambda p: p.prob).label == "happiness"
        pts = np.array([(p.x, p.y) for p in f.landmarks])
        crops.append(aligned_crop(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY), pts).astype(float))
    assert np.corrcoef(crops[0].ravel(), crops[1].ravel())[0, 1] > 0.9


def test_geometry_action_units_follow_the_expression(feat_data, config):
    analyzer = get_face_analyzer(config.preprocess.faces)
    present = {}
    for photo in POSED:
        f = analyzer.analyse(cv2.imread(str(feat_data / photo)))[0]
        present[POSED[photo]] = {a.au for a in f.action_units if a.present}
    assert "AU12" in present["happiness"] and "AU12" not in present["anger"]
    assert "AU04" in present["anger"] and "AU04" not in present["happiness"]
    assert "AU25" in present["surprise"] and "AU25" not in present["anger"]


def test_multi_face_photo_finds_several_faces(feat_data, config):
    faces = get_face_analyzer(config.preprocess.faces).analyse(cv2.imread(str(feat_data / "multi_face.jpg")))
    assert len(faces) >= 3


@pytest.mark.slow  # loads whisper
def test_video_clips_get_tracked_faces_speech_and_prosody(feat_data, speech_dir, config, run_dir, tmp_path):
    from flows.demo import mux_speech_over_video

    video = mux_speech_over_video(feat_data / "WolfgangLanger_Pexels.mp4", speech_dir / "beckett.wav", tmp_path / "talk.mp4")
    sampled = sample_source(video, file_sha256(video), config, run_dir, "r")
    features, rejects = preprocess_source(sampled.source, sampled.clips, config, "r")
    assert not rejects and len(features) == len(sampled.clips)
    f = features[0]
    clip = sampled.clips[0]
    assert wer(TRUTH["beckett.wav"], " ".join(w.text for w in f.words)) <= 0.10
    assert f.language == "en" and 0.9 < f.language_probability <= 1.0  # detected, and whisper's certainty kept
    # one voice: the offline diarizer finds one speaker, and says nothing is a fallback
    assert {w.speaker for w in f.words} == {"SPEAKER_00"} and f.speakers
    assert f.provenance.model_id and "offline:segmentation-3.0" in f.provenance.model_id
    # faces on the sampled frames, one main track chosen with a stated reason
    fc = config.preprocess.faces
    assert len({o.frame_index for o in f.faces}) >= len(frame_times(clip, fc.sample_fps, fc.max_frames_per_clip, fc.min_frames_per_clip)) * 0.8
    assert f.main_track_id is not None and "visible in" in f.main_track_reason
    # a male-range voice reading: mean pitch between 75 and 250 Hz; per-word windows
    assert 75 < f.prosody.pitch_mean_hz < 250
    assert len(f.prosody.functionals) == 88
    assert f.speech_encoding and len(f.speech_encoding) == 512  # whisper base's encoder width, for the learned voice model
    assert 0 < f.prosody.speech_rate_wps < 6 and 0 <= f.prosody.pause_ratio < 1
    tl = ClipTimeline(f)
    i = next(i for i, w in enumerate(f.words) if w.text.lower().startswith("failed"))
    assert tl.face_during_word(i), "a face frame during the word"
    assert tl.prosody_of_word(i).word_index == i


def test_no_face_and_no_speech_clips_are_empty_but_valid(feat_data, config, run_dir):
    sampled = sample_source(feat_data / "face_noface.mov", file_sha256(feat_data / "face_noface.mov"), config, run_dir, "r")
    features, rejects = preprocess_source(sampled.source, sampled.clips, config, "r")
    assert not rejects
    by_start = sorted(features, key=lambda f: f.clip_id)
    face_clip, title_clip = by_start
    assert face_clip.faces and face_clip.main_track_id is not None
    assert not title_clip.faces and title_clip.main_track_id is None
    assert any("no face found" in n for n in title_clip.notes)
    for f in features:
        assert not f.words and any("no speech" in n for n in f.notes)


@pytest.mark.slow  # loads whisper
def test_audio_only_clip_has_no_faces_with_a_reason(speech_dir, config, run_dir):
    path = speech_dir / "beckett.wav"
    sampled = sample_source(path, file_sha256(path), config, run_dir, "r")
    features, _ = preprocess_source(sampled.source, sampled.clips, config, "r")
    assert features[0].words and not features[0].faces
    assert "no video: no faces" in features[0].notes


def test_geometry_is_scale_free():
    import numpy as np

    rng = np.random.default_rng(0)
    pts = rng.uniform(100, 300, size=(68, 2))
    g1, g2 = geometry(pts), geometry(pts * 2.5)
    for k in g1:
        if k != "inter_ocular_px":
            assert abs(g1[k] - g2[k]) < 1e-9, k
    assert all(0 <= a.intensity <= 1 for a in au_proxies(g1))


@pytest.mark.slow  # loads whisper
def test_unsure_speech_is_heard_the_same_way_every_time(speech_dir, config):
    # speech played backwards: whisper's first decode of it is unsure, which is where its default
    # fallback samples at higher temperatures and a rerun of the same file hears other words
    audio = np.ascontiguousarray(decode_once(speech_dir / "two_cities.wav", []).audio[: 8 * 16000][::-1])
    asr = get_transcriber(config.preprocess.asr)
    segments, _ = asr.model.transcribe(audio, language="en", beam_size=5, vad_filter=False, condition_on_previous_text=False,
                                       temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert any(s.temperature > 0 for s in segments)  # the fallback would sample here
    heard = [[(w.text, w.start, w.end) for w in asr.transcribe(audio, offset=0.0, language="en")[1]] for _ in range(3)]
    assert heard[0] and heard[1] == heard[0] and heard[2] == heard[0]


@pytest.mark.slow  # loads whisper
def test_whisperx_backend_transcribes_with_the_packaged_model(speech_dir):
    from schemas import load_config

    cfg = load_config(overrides=["preprocess.asr.backend=whisperx"])
    audio = decode_once(speech_dir / "beckett.wav", []).audio
    language, words = get_transcriber(cfg.preprocess.asr).transcribe(audio, offset=5.0)
    assert language == "en"
    assert wer(TRUTH["beckett.wav"], " ".join(w.text for w in words)) <= 0.15
    # no local aligner: word times are shared out within whisperx's segments, in order, on the source clock
    assert all(w.start is not None and 5.0 <= w.start <= w.end <= 5.0 + audio.size / 16000 + 0.5 for w in words)


def test_missing_diarization_pipeline_is_a_clear_error(tmp_path):
    from pipeline.preprocess.diarize import Diarizer
    from pipeline.preprocess.weights import WeightsError
    from schemas.config import DiarizationConfig

    with pytest.raises(WeightsError, match="nope/config.yaml: pyannote pipeline config not found"):
        Diarizer(DiarizationConfig(pipeline=str(tmp_path / "nope" / "config.yaml")))


def test_py_feat_backend_without_weights_says_what_is_missing():
    from pipeline.preprocess.faces import PyFeatFaceAnalyzer
    from pipeline.preprocess.weights import WeightsError
    from schemas.config import FaceConfig

    with pytest.raises(WeightsError, match="feat_model_dir"):
        PyFeatFaceAnalyzer(FaceConfig(backend="py-feat"))


def test_own_neutral_needs_a_moving_face(feat_data, config):
    """A still picture is its own median: no neutral to compare with (population proxies stay). With
    the happy and the surprised photo's faces mixed in, the neutral is estimated, the common face
    barely departs from it, and the smile departs from the surprise-dominated neutral as AU12."""
    from pipeline.preprocess.faces import au_against_neutral, person_neutral

    analyzer = get_face_analyzer(config.preprocess.faces)
    g = {p: {v.name: v.value for v in analyzer.analyse(cv2.imread(str(feat_data / p)))[0].geometry} for p in POSED}
    assert person_neutral([g["0-f15-hao-ph.jpg"]] * 12) is None
    assert person_neutral([g["0-f15-hao-ph.jpg"]] * 3, min_frames=8) is None
    # nine frames of the surprised face with landmark jitter, three of the smile
    mixed = [{k: v + 0.002 * i for k, v in g["0-f1-su-ph.jpg"].items()} for i in range(9)] + [g["0-f15-hao-ph.jpg"]] * 3
    neutral = person_neutral(mixed)
    assert neutral is not None
    assert all(a.intensity < 0.15 and not a.present for a in au_against_neutral(g["0-f1-su-ph.jpg"], neutral))
    smile = {a.au: a for a in au_against_neutral(g["0-f15-hao-ph.jpg"], neutral)}
    assert smile["AU12"].present and smile["AU12"].source == "geometry-own-neutral"


class CountingASR(Transcriber):
    """The real transcriber, counting its calls and the ones that had to detect the language."""

    def __init__(self, asr):
        self.asr, self.calls, self.detections = asr, 0, 0

    def transcribe_encoded(self, audio, offset, language=None):
        self.calls += 1
        self.detections += language is None
        return self.asr.transcribe_encoded(audio, offset, language)

    def transcribe(self, audio, offset, language=None):
        return self.transcribe_encoded(audio, offset, language)[:2]


@pytest.mark.slow  # loads whisper
def test_clips_of_a_source_share_asr_windows_without_losing_words(speech_dir, config, run_dir):
    from pipeline.preprocess.asr import transcribe_clips

    wav = speech_dir / "two_cities.wav"
    clips = sample_source(wav, file_sha256(wav), config, run_dir, "r").clips
    assert len(clips) >= 3
    audio = decode_once(wav, [], sample_rate=16000).audio
    asr = get_transcriber(config.preprocess.asr)
    hyps, counts = {}, {}
    for window_s in (0.0, 30.0):
        counting = CountingASR(asr)
        out = transcribe_clips(counting, clips, audio, 16000, config.preprocess.asr.model_copy(update={"window_s": window_s}))
        assert set(out) == set(range(len(clips)))
        for i, (language, words, _) in ((i, (x.language, x.words, x.encoding)) for i, x in out.items()):
            assert language == "en"
            # every clip carries the source's detection, which only the first window made
            assert out[i].language_probability == out[0].language_probability and 0.5 < out[i].language_probability <= 1.0
            # each word sits in the clip it was given to, on the source timeline
            assert all(clips[i].start - 0.3 <= (w.start + w.end) / 2 <= clips[i].end + 0.3 for w in words)
        hyps[window_s] = " ".join(w.text for i in sorted(out) for w in out[i].words)
        counts[window_s] = (counting.calls, counting.detections)
    assert counts[0.0] == (len(clips), 1)  # the language is detected once per source either way
    assert counts[30.0][0] < len(clips)  # fewer 30 s encoder passes than clips
    assert counts[30.0][1] == 1
    # packing must not cost accuracy
    assert wer(TRUTH["two_cities.wav"], hyps[30.0]) <= max(0.10, wer(TRUTH["two_cities.wav"], hyps[0.0]) + 0.02), hyps


@pytest.mark.slow  # loads whisper
def test_short_files_in_a_known_language_share_windows(speech_dir, config, run_dir, tmp_path):
    """A corpus of one-phrase files: with the language configured, the files share whisper windows
    (far fewer calls than files), each file gets its own words on its own timeline, and accuracy
    holds against transcribing file by file."""
    import soundfile as sf

    from pipeline.preprocess.asr_packing import transcribe_short_sources

    audio = decode_once(speech_dir / "two_cities.wav", [], sample_rate=16000).audio
    phrases = REFERENCE["two_cities.wav"][:10]
    files = []
    for k, (_, start, end) in enumerate(phrases):
        f = tmp_path / f"phrase{k:02d}.wav"
        # the phrases follow each other closely: a wider cut would hold the next one's first word
        sf.write(f, audio[int((start - 0.05) * 16000):int((end + 0.05) * 16000)], 16000)
        files.append(f)
    cfg = config.model_copy(deep=True)
    cfg.preprocess.asr.language = "en"
    sources = []
    for f in files:
        s = sample_source(f, file_sha256(f), cfg, run_dir, "r")
        assert s.clips, s.rejects
        sources.append((s.source, s.clips))
    asr = CountingASR(get_transcriber(cfg.preprocess.asr))
    packed = transcribe_short_sources(asr, sources, cfg.preprocess.asr, 16000)
    assert set(packed) == {s.source_id for s, _ in sources}
    assert asr.calls <= 3 and asr.detections == 0  # ten files, a handful of windows, no language detection
    by_file = []
    for (source, clips), (text, _, _) in zip(sources, phrases):
        by_clip = {t.clip_id: t.words for t in packed[source.source_id]}
        words = [w for c in clips for w in by_clip.get(c.clip_id, [])]
        # on the file's own timeline, inside its clips
        assert all(clips[0].start - 0.3 <= w.start <= w.end <= clips[-1].end + 0.3 for w in words)
        by_file.append(" ".join(w.text for w in words))
    truth = " ".join(t for t, _, _ in phrases)
    alone = " ".join(" ".join(w.text for w in preprocess_source(s, c, cfg.model_copy(update={}), "r")[0][0].words) for s, c in sources)
    assert wer(truth, " ".join(by_file)) <= max(0.10, wer(truth, alone) + 0.03), by_file


@pytest.mark.slow  # runs the pipeline
def test_a_run_on_short_files_in_a_known_language_packs_them(speech_dir, tmp_path, monkeypatch):
    import soundfile as sf

    from flows.pipeline_flow import run_pipeline
    from pipeline.preprocess.asr import FasterWhisperASR
    from schemas import load_config
    from storage import RunDir

    calls = []
    real = FasterWhisperASR.transcribe_encoded
    monkeypatch.setattr(FasterWhisperASR, "transcribe_encoded", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    audio = decode_once(speech_dir / "two_cities.wav", [], sample_rate=16000).audio
    d = tmp_path / "phrases"
    d.mkdir()
    phrases = REFERENCE["two_cities.wav"][4:9]
    for k, (_, start, end) in enumerate(phrases):
        sf.write(d / f"p{k}.wav", audio[int((start - 0.05) * 16000):int((end + 0.05) * 16000)], 16000)
    config = load_config(overrides=["preprocess.asr.language=en", 'annotate.panel=[{"id": "lexical", "backend": "lexical"}]'])
    run_pipeline([str(d)], str(tmp_path / "run"), config)
    run = RunDir(tmp_path / "run")
    features = run.read("features")
    assert len(features) == len(phrases) and all(f.words and f.language == "en" for f in features)
    assert all(f.language_probability is None for f in features)  # declared, not detected
    assert 0 < len(calls) < len(phrases)  # the five files shared windows
    # each clip keeps whisper's mean encoder state over its own piece of the shared window
    encodings = [f.speech_encoding for f in features]
    assert all(e and len(e) == 512 for e in encodings) and len({tuple(e) for e in encodings}) == len(encodings)
    file_of = {s.source_id: Path(s.path).name for s in run.read("sources")}
    clip_file = {c.clip_id: file_of[c.source_id] for c in run.read("clips")}
    said = " ".join(w.text for f in sorted(features, key=lambda f: clip_file[f.clip_id]) for w in f.words)
    assert wer(" ".join(t for t, _, _ in phrases), said) <= 0.15, said


def test_short_clips_are_sampled_densely_enough_to_read_a_face():
    """A 1.7 s clip at 2 frames a second gave the face agents 4 frames: too few for the person's own
    neutral (8) or a calm quarter besides the apex. A short clip now gets min_frames_per_clip, a long
    one its sample_fps up to max_frames_per_clip, a photo its one frame."""
    from tests.fixtures.judge_cases import clip

    fc = load_config().preprocess.faces
    short = frame_times(clip(start=3.0, end=4.7), fc.sample_fps, fc.max_frames_per_clip, fc.min_frames_per_clip)
    assert len(short) == fc.min_frames_per_clip == 12 and all(3.0 < t < 4.7 for t in short)
    assert len(frame_times(clip(start=0.0, end=60.0), fc.sample_fps, fc.max_frames_per_clip, fc.min_frames_per_clip)) == fc.max_frames_per_clip
    assert len(frame_times(clip(start=0.0, end=8.0), fc.sample_fps, fc.max_frames_per_clip, fc.min_frames_per_clip)) == 16
    photo = clip().model_copy(update={"kind": "still"})
    assert frame_times(photo, fc.sample_fps, fc.max_frames_per_clip, fc.min_frames_per_clip) == [photo.start]
    # a key frame from before the clip (its picture when nothing changed since) is not measured: the
    # judge would find the clip's face evidence outside the clip; one inside it is
    from schemas.clip import KeyFrame

    kf = [KeyFrame(time=t, frame_index=int(t * 25), path=f"kf{t}.jpg", score=0.0, method="frame_diff") for t in (0.027, 4.001)]
    framed = frame_times(clip(start=3.0, end=4.7).model_copy(update={"keyframes": kf}), fc.sample_fps, fc.max_frames_per_clip,
                         fc.min_frames_per_clip)
    assert 4.001 in framed and all(3.0 <= t <= 4.7 for t in framed)
    with pytest.raises(ConfigError, match="min_frames_per_clip .30. exceeds max_frames_per_clip .24."):
        load_config(overrides=["preprocess.faces.min_frames_per_clip=30"])


def test_population_reference_note_says_why():
    """A clip whose source has too few face frames says so, not that the face does not move."""
    from pipeline.preprocess.stage import against_own_neutral
    from schemas.features import NamedValue
    from tests.fixtures.judge_cases import features

    f = features()  # three main-face frames
    geo = [NamedValue(name=n, value=0.3) for n in ("brow_raise", "brow_furrow", "eye_aperture", "upper_lip_gap", "lip_corner_lift", "mouth_open")]
    f = f.model_copy(update={"faces": [o.model_copy(update={"geometry": geo}) for o in f.faces]})
    [out] = against_own_neutral([f], load_config().preprocess.faces)
    assert any("only 3 main-face frames in this source, 8 needed" in n for n in out.notes), out.notes

    # twelve frames that move, over 1.1 s: one held expression, its calmest frames are no neutral (a
    # smile held through a 2 s clip read as no movement); over 5.5 s the person's own neutral is used
    def moving(step_s):
        frames = []
        for k in range(12):
            geo = [NamedValue(name=n, value=0.3 + 0.01 * (k % 4)) for n in
                   ("brow_raise", "brow_furrow", "eye_aperture", "upper_lip_gap", "lip_corner_lift", "mouth_open")]
            frames.append(f.faces[0].model_copy(update={"time": 10.0 + k * step_s, "frame_index": k, "geometry": geo}))
        return f.model_copy(update={"faces": frames})

    [brief] = against_own_neutral([moving(0.1)], load_config().preprocess.faces)
    assert any("the face is seen for 1.1 s in this source, 4 s needed" in n for n in brief.notes), brief.notes
    assert {a.source for o in brief.faces for a in o.action_units} == {"geometry-proxy"}
    [long] = against_own_neutral([moving(0.5)], load_config().preprocess.faces)
    assert any("against this person's own neutral" in n for n in long.notes), long.notes
    assert {a.source for o in long.faces for a in o.action_units} == {"geometry-own-neutral"}
