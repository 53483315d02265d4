"""The voice model a run learns from its own labelled clips, and the annotator that reports it.

No speech-emotion model ships in any package we can install, and the literature's vocal profiles
(agents/vocal_profiles.py) are coarse: on acted single words they are near chance. What a corpus
does have, once someone has labelled part of it (`judge.gold`, or reviewers' verdicts pulled from
Label Studio), is its own answer key. This module fits, once per run before stage 3, a multinomial
logistic regression (scikit-learn, balanced class weights, so its probabilities assume equal class
rates and the judge supplies the run's own: agents/judge/reliability.py) on the 88 eGeMAPS
functionals of the labelled clips and the mean of the speech recogniser's encoder states over each
clip (whisper's own acoustic reading of the speech, kept by stage 2; linear probes on it are a
common speech-emotion baseline), each column z-scored within the clip's voice group (its speaker's
clips, `annotate.baseline`, or the run's), which is the speaker normalisation speech-emotion work
uses (Schuller et al. 2011; the eGeMAPS paper, Eyben et al. 2016, reports its baselines the same way).

Honesty rules:
- a labelled clip is answered by the fold that left it out (grouped by speaker when the labelled
  clips come from several), so the judge never sees the model recite a label it was fitted on;
- the model answers only when its out-of-fold accuracy beats always answering the commonest
  label; otherwise every clip abstains with both figures;
- it gives probability only to the labels it was shown, and says how many clips it learned from.
"""

from __future__ import annotations

from collections import Counter
import numpy as np

from agents.base import PerClipAnnotator, register
from agents.teach_set import choose_teach_set
from schemas import Annotation, AnnotatorInput, Clip, ClipFeatures, Evidence
from schemas.config import LearnedVoiceConfig
from schemas.feature_ref import FeatureRef
from schemas.features import LabelProb, LearnedCue, LearnedVoice, VoiceBaseline
from schemas.rationale import normalise

MIN_GROUP = 3  # clips a voice group needs for its own statistics; smaller groups use the run's
TOP_CUES = 4


def _functionals(f: ClipFeatures) -> dict[str, float]:
    p = f.prosody
    if p is None or not p.functionals or p.pitch_mean_hz is None:
        return {}
    return {x.name: float(x.value) for x in p.functionals if np.isfinite(x.value)}


def _z_within_groups(x: np.ndarray, groups: list[str]) -> np.ndarray:
    """Each column z-scored within each group (median centre, standard deviation scale); groups
    smaller than MIN_GROUP share the run's statistics."""
    sizes = Counter(groups)
    keys = np.array([g if sizes[g] >= MIN_GROUP else "<run>" for g in groups])
    out = np.zeros_like(x)
    for g in set(keys):
        rows = keys == g
        ref = x[rows] if rows.sum() >= MIN_GROUP else x
        centre, scale = np.median(ref, axis=0), ref.std(axis=0)
        out[rows] = np.divide(x[rows] - centre, scale, out=np.zeros_like(x[rows]), where=scale > 1e-9)
    return np.clip(out, -5.0, 5.0)


def fit_learned_voice(clips: list[Clip], features: list[ClipFeatures], known: dict[str, list[str]],
                      voice: dict[str, VoiceBaseline], config: LearnedVoiceConfig, taxonomy: list[str],
                      labels_from: str) -> dict[str, LearnedVoice]:
    """clip_id -> the model's answer (or why there is none) for every clip with eGeMAPS functionals.
    `known`: labels of clips whose truth is known; `voice`: each clip's voice baseline (its group).
    Without enough labelled clips there is no model, and `config.teach` unlabelled clips are marked
    for a person to label first (agents/teach_set.py)."""
    by_id = {c.clip_id for c in clips if c.speech}  # the sound of a clip with no detected speech is no one's voice
    rows = {f.clip_id: m for f in features if f.clip_id in by_id and (m := _functionals(f))}
    if not rows:
        return {}
    ids = list(rows)
    label_of = {i: known[i][0] for i in ids if known.get(i) and known[i][0] in taxonomy}
    counts = Counter(label_of.values())
    usable = {i: lab for i, lab in label_of.items() if counts[lab] >= 2}  # a label seen once cannot be held out
    classes = sorted(set(usable.values()), key=taxonomy.index)
    if len(usable) < config.min_labelled or len(classes) < 2:
        why = (f"no voice model: the run has {len(label_of)} labelled clips with voiced speech in {len(counts)} emotions "
               f"(it needs {config.min_labelled} in at least 2 emotions, each labelled twice or more; label clips with "
               "judge.gold or review verdicts")
        teach = set()
        if len(ids) < config.min_labelled:
            # labelling every voiced clip of the run would still leave it short: asking for labels in the
            # voice model's name would promise a model the run cannot fit
            why += f"; the run has only {len(ids)} clips with voiced speech, so none is flagged to teach it)"
        else:
            if config.teach and (matrix := voice_matrix(ids, rows, features, voice)) is not None:
                teach = choose_teach_set(ids, matrix[0], config.teach, {i for i in ids if known.get(i)})
            why += ", those flagged teach_voice_model first)" if teach else ")"
        return {i: LearnedVoice(note=why, teach=i in teach) for i in ids}
    matrix = voice_matrix(ids, rows, features, voice)
    if matrix is None:
        return {i: LearnedVoice(note="no voice model: the clips share no eGeMAPS functional") for i in ids}
    x, x_raw, names, reads = matrix
    try:
        return _fit(ids, x, x_raw, names, usable, classes, voice, config, labels_from, reads)
    except ValueError as exc:  # e.g. a fold whose clips all carry one label: say so, never fail the run
        why = f"no voice model: fitting on {len(usable)} labelled clips failed ({exc})"
        return {i: LearnedVoice(note=why) for i in ids}


def voice_matrix(ids: list[str], rows: dict[str, dict[str, float]], features: list[ClipFeatures],
                 voice: dict[str, VoiceBaseline]) -> tuple[np.ndarray, np.ndarray, list[str], str] | None:
    """What the voice model reads of each clip in `ids`: (x, the raw functionals, their names, what
    it reads), each column z-scored within the clip's voice group; None when the clips share no
    functional."""
    names = sorted(set.intersection(*(set(rows[i]) for i in ids)))
    if not names:
        return None
    x_raw = np.array([[rows[i][n] for n in names] for i in ids])
    groups = [voice[i].key if i in voice else "<run>" for i in ids]
    x = _z_within_groups(x_raw, groups)
    # the ASR encoder's mean state, where stage 2 kept it for most clips: whisper's acoustic reading of
    # the speech separates acted emotions better than the functionals do (README, learned voice model)
    wanted = set(ids)
    enc = {f.clip_id: f.speech_encoding for f in features if f.clip_id in wanted and f.speech_encoding}
    reads = "eGeMAPS functionals"
    if enc and 2 * len(enc) >= len(ids):
        dim = Counter(len(e) for e in enc.values()).most_common(1)[0][0]
        e_raw = np.array([enc[i] if len(enc.get(i) or ()) == dim else [np.nan] * dim for i in ids], dtype=float)
        have = ~np.isnan(e_raw[:, 0])
        e = np.zeros_like(e_raw)  # a clip without it sits at its group's centre
        e[have] = _z_within_groups(e_raw[have], [g for g, h in zip(groups, have) if h])
        x = np.hstack([x, e])
        reads = "eGeMAPS functionals and the speech recogniser's encoder states"
    return x, x_raw, names, reads


def voice_classifier(c: float):
    """The voice model before fitting: scaled columns, multinomial logistic regression with balanced
    class weights (its probabilities assume equal class rates; the judge supplies the run's)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, class_weight="balanced"))


def _fit(ids, x, x_raw, names, usable, classes, voice, config, labels_from, reads) -> dict[str, LearnedVoice]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold, cross_val_predict

    def model():
        return voice_classifier(config.c)

    train = [i for i in ids if i in usable]
    pos = {i: k for k, i in enumerate(ids)}
    xt = x[[pos[i] for i in train]]
    yt = np.array([usable[i] for i in train])
    speakers = [voice[i].key if i in voice and voice[i].scope == "speaker" else f"clip:{i}" for i in train]
    n_speakers = len(set(speakers))
    if n_speakers >= 2 and n_speakers < len(train):  # whole speakers out: the model is judged on voices it has not heard
        folds, grouped = GroupKFold(n_splits=min(config.folds, n_speakers)), "speaker"
        oof = cross_val_predict(model(), xt, yt, groups=speakers, cv=folds, method="predict_proba")
    else:
        folds = StratifiedKFold(n_splits=min(config.folds, min(Counter(yt).values())), shuffle=True, random_state=0)
        grouped = "clip"
        oof = cross_val_predict(model(), xt, yt, cv=folds, method="predict_proba")
    # cross_val_predict's columns follow the sorted labels; ours follow the taxonomy
    sorted_labels = list(np.unique(yt))
    oof = oof[:, [sorted_labels.index(c) for c in classes]]
    cv_accuracy = float(np.mean(np.array(classes)[oof.argmax(axis=1)] == yt))
    majority = max(Counter(yt).values()) / len(yt)
    common = dict(n_labelled=len(train), labels_from=labels_from, cv_accuracy=round(cv_accuracy, 4),
                  majority_share=round(majority, 4), grouped_by=grouped, reads=reads)
    if cv_accuracy <= majority:
        why = (f"no voice model: fitted on {len(train)} labelled clips it is right on {cv_accuracy:.0%} of them out of fold, "
               f"no better than always answering the commonest label ({majority:.0%})")
        return {i: LearnedVoice(note=why, **common) for i in ids}

    final = model().fit(xt, yt)
    proba = final.predict_proba(x)
    oof_of = dict(zip(train, oof))
    scaler, lr = final.named_steps["standardscaler"], final.named_steps["logisticregression"]
    order = [list(lr.classes_).index(c) for c in classes]
    out: dict[str, LearnedVoice] = {}
    for k, i in enumerate(ids):
        held_out = i in oof_of
        p = oof_of[i] if held_out else proba[k][order]
        top = int(np.argmax(p))
        # what moved the top label: each functional's term in its logit, over the mean logit's
        coef = lr.coef_[order]
        terms = (coef[top] - coef.mean(axis=0)) * (x[k] - scaler.mean_) / np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        terms = terms[:len(names)]  # cite only functionals: a measured value the judge can check
        cited = [j for j in np.argsort(-terms)[:TOP_CUES] if terms[j] > 0]
        cues = [LearnedCue(name=names[j], value=round(float(x_raw[k, j]), 6), z=round(float(x[k, j]), 3), push=round(float(terms[j]), 3))
                for j in cited]
        dist = sorted((LabelProb(label=c, prob=round(float(q), 4)) for c, q in zip(classes, p)), key=lambda lp: -lp.prob)
        out[i] = LearnedVoice(distribution=dist, held_out=held_out, cues=cues, **common)
    return out


@register
class LearnedVoiceAgent(PerClipAnnotator):
    backend = "voice-learned"
    model_id = "learned-voice(eGeMAPS functionals + whisper encoder means, logistic regression on this run's labelled clips)"
    model_version = "1"
    reads_learned_voice = True
    calibrated = True  # answers are out of fold where it could be checked, and it abstains unless it beat the majority
    subsumes = frozenset({"prosody", "voice-quality"})  # it reads every eGeMAPS functional their rules read

    def annotate_one(self, item: AnnotatorInput, run_id: str) -> Annotation:
        lv = item.learned_voice
        if lv is None:
            return self.abstain(item, run_id, "no detected speech with eGeMAPS functionals")
        if not lv.distribution:
            return self.abstain(item, run_id, lv.note)
        label, prob = lv.distribution[0].label, lv.distribution[0].prob
        evidence = [Evidence(evidence_id=f"e{k + 1}", modality="prosody",
                             cue=f"{c.name} {c.value:.4g} (z {c.z:+.1f} within its voice group)",
                             start=item.clip.start, end=item.clip.end, feature_ref=str(FeatureRef.prosody(c.name)))
                    for k, c in enumerate(lv.cues)]
        ids = [e.evidence_id for e in evidence]
        shown = ", ".join(p.label for p in lv.distribution)
        fold = (" This clip is labelled: the answer is from the fold that left it out." if lv.held_out else "")
        steps = normalise([
            f"A voice model fitted on this run's {lv.n_labelled} labelled clips ({lv.labels_from}; emotions {shown}) reads the "
            f"clip's {lv.reads or 'eGeMAPS functionals'}, z-scored within its voice group; out of fold (by {lv.grouped_by}) it is right on "
            f"{lv.cv_accuracy:.0%} of them, against {lv.majority_share:.0%} for always answering the commonest label.{fold}",
            ("The functionals that move it most toward " + label + ": "
             + "; ".join(f"{c.name} z {c.z:+.1f}" for c in lv.cues) + ".") if lv.cues else
            "No single functional stands out; the answer rests on the whole profile.",
            f"Therefore, with probability {prob:.2f}, the most prominent emotion is {label}.",
        ], label, [ids, ids, ids])
        return Annotation(**self.base(item, run_id), label=label, labels=[label], label_distribution=lv.distribution,
                          intensity=None, steps=steps, evidence=evidence)
