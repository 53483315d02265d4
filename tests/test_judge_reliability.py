"""Stage 4's learned part: reliability-weighted consensus (Dawid-Skene on full distributions), the
calibrated confidence, routing to a target accuracy, and known labels (gold, reviewers) feeding back."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from agents.judge import judge_run
from agents.judge.calibration import accepted_estimate, cut_for_target, fit_calibrator
from agents.judge.reliability import SoftVotes, fit
from schemas import load_config
from tests.fixtures.judge_cases import answer, clip, ev, face, features

LABELS = ["anger", "happiness", "sadness", "neutral"]


def simulate(seed: int, n: int, annotators: dict[str, float | str], k: int = 4, coverage: float = 1.0):
    """annotators: name -> accuracy (a wrong answer is uniform over the other labels) or a constant label index."""
    rng = random.Random(seed)
    truth = [rng.randrange(k) for _ in range(n)]
    clip_, who, lab = [], [], []
    for i, y in enumerate(truth):
        for j, (_, spec) in enumerate(annotators.items()):
            if rng.random() > coverage:
                continue
            if isinstance(spec, str):
                label = int(spec)
            else:
                label = y if rng.random() < spec else rng.choice([x for x in range(k) if x != y])
            clip_.append(i)
            who.append(j)
            lab.append(label)
    return np.array(truth), np.array(clip_), np.array(who), np.array(lab)


def test_soft_dawid_skene_lands_where_crowdkit_does_on_hard_votes():
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    truth, c, w, y = simulate(0, 400, {"a": 0.85, "b": 0.7, "c": 0.55, "d": 0.4}, k=5, coverage=0.8)
    ours = fit(SoftVotes(c, w, np.eye(5)[y], 400, 4), prior_strength=1e-4, class_prior_weight=0.0, tol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = DawidSkene(n_iter=100).fit(pd.DataFrame({"task": c, "worker": w, "label": y})).probas_
    answered = np.unique(c)
    theirs = theirs.reindex(index=answered, columns=range(5)).fillna(0.0).to_numpy()
    mine = ours.posterior[answered]
    # the two stop iterating at different points: near-tied clips may fall either way
    assert (mine.argmax(1) == theirs.argmax(1)).mean() > 0.97
    assert np.abs(mine - theirs).mean() < 0.02
    assert list(np.argsort(-ours.accuracy())) == [0, 1, 2, 3]  # it ranks the annotators by how good they are


@pytest.mark.parametrize("blind_evidence", [None, 25.0])  # no cap, and the default cap on what unlabelled clips teach
def test_an_annotator_that_says_one_label_to_everything_earns_no_weight(blind_evidence):
    # one informative annotator (70%) and two that answer "happiness" and "neutral" whatever the truth:
    # an equal vote lets the constant ones win every clip they outnumber the informative one on
    truth, c, w, y = simulate(1, 300, {"informative": 0.7, "always-happy": "1", "always-neutral": "3"})
    soft = np.eye(4)[y]
    fitted = fit(SoftVotes(c, w, soft, 300, 3), blind_evidence=blind_evidence)
    consensus = fitted.posterior.argmax(1)
    informative = y[w == 0]
    assert (consensus == truth).mean() >= (informative == truth).mean() - 1e-9
    majority = np.zeros((300, 4))
    np.add.at(majority, (c, y), 1.0)
    assert (consensus == truth).mean() > (majority.argmax(1) == truth).mean() + 0.1
    acc = fitted.accuracy()
    assert acc[0] > max(acc[1], acc[2]) + 0.15
    if blind_evidence is None:  # capped, the estimates stay nearer the stated prior (0.6 for all three)
        assert acc[0] > 0.6 and acc[1] < 0.35 and acc[2] < 0.35


def test_full_distributions_carry_what_top_labels_lose():
    """Two annotators 60% right; when wrong, their second choice is the truth. Their top labels
    disagree on many clips; their distributions settle most of them."""
    rng = random.Random(2)
    n, k = 300, 4
    truth = np.array([rng.randrange(k) for _ in range(n)])
    c, w, probs = [], [], []
    for i, t in enumerate(truth):
        for j in range(2):
            p = np.full(k, 0.05)
            if rng.random() < 0.6:
                p[t] = 0.65
                p[rng.choice([x for x in range(k) if x != t])] = 0.25
            else:
                p[rng.choice([x for x in range(k) if x != t])] = 0.6
                p[t] = 0.3
            c.append(i)
            w.append(j)
            probs.append(p / p.sum())
    c, w, probs = np.array(c), np.array(w), np.array(probs)
    soft = fit(SoftVotes(c, w, probs, n, 2)).posterior.argmax(1)
    hard = fit(SoftVotes(c, w, np.eye(k)[probs.argmax(1)], n, 2)).posterior.argmax(1)
    assert (soft == truth).mean() > (hard == truth).mean() + 0.1


def test_known_labels_anchor_the_fit():
    # a tiny run where the only annotator is wrong in a systematic way (says sadness for anger):
    # with no known labels nothing can tell; with a few, the fit learns the swap
    truth = np.array([0, 0, 0, 0, 2, 2, 2, 2, 1, 1])
    swap = {0: 2, 2: 0, 1: 1}
    y = np.array([swap[t] for t in truth])
    votes = SoftVotes(np.arange(10), np.zeros(10, dtype=int), np.eye(4)[y], 10, 1)
    blind = fit(votes).posterior.argmax(1)
    known = np.zeros((10, 4))
    known[[0, 4, 8], truth[[0, 4, 8]]] = 1.0
    anchored = fit(votes, known, prior_strength=0.5).posterior.argmax(1)
    assert (blind == truth).mean() == pytest.approx(0.2)
    assert (anchored == truth).mean() == 1.0


def test_a_large_blind_run_does_not_outweigh_what_labelled_media_measured():
    """Three weak annotators (40-45% right on eight labels, their measured accuracies given as the
    priors), two answers a clip on average. At full weight the blind fit teaches itself from its own
    beliefs and states confidences far above how often it is right; with the unlabelled clips
    counting as 25 labelled ones, the stated confidence stays near the truth and the labels are as
    good or better. Seeded: the same votes on every machine."""
    measured = np.array([0.45, 0.45, 0.4])
    for seed in range(3):
        truth, c, w, y = simulate(seed, 400, dict(zip("abc", measured)), k=8, coverage=0.6)
        votes = SoftVotes(c, w, np.eye(8)[y], 400, 3)
        answered = np.bincount(c, minlength=400) > 0
        outcome = {}
        for cap in (None, 25.0):
            q = fit(votes, prior_accuracy=measured, blind_evidence=cap).posterior[answered]
            outcome[cap] = ((q.argmax(1) == truth[answered]).mean(), q.max(1).mean())
        (acc_full, conf_full), (acc_cap, conf_cap) = outcome[None], outcome[25.0]
        assert conf_full - acc_full > 0.15  # overconfident
        assert abs(conf_cap - acc_cap) < 0.08
        assert acc_cap >= acc_full - 1e-9


def test_a_measured_prior_weighs_more_and_a_plugin_with_none_still_earns_its_weight():
    """With the strengths the judge gives (the next test checks it does): a constant plugin beside a
    measured informative agent still loses its weight (since `information_share`, at any strength),
    and the measured agents' stated confidence stays near how often the run is right, with labels as
    good as at the weak prior (seeded: the same votes everywhere)."""
    strength = load_config().judge.reliability.measured_prior_strength
    truth, c, w, y = simulate(1, 300, {"informative": 0.7, "always-happy": "1", "always-neutral": "3"})
    fitted = fit(SoftVotes(c, w, np.eye(4)[y], 300, 3), prior_accuracy=np.array([0.7, 0.6, 0.6]),
                 prior_strength=np.array([strength, 2.0, 2.0]), blind_evidence=25.0)
    consensus = fitted.posterior.argmax(1)
    assert (consensus == truth).mean() >= (y[w == 0] == truth).mean() - 1e-9
    acc = fitted.accuracy()
    assert acc[0] > max(acc[1], acc[2]) + 0.15
    measured = np.array([0.45, 0.45, 0.4])
    for seed in range(3):
        truth, c, w, y = simulate(seed, 400, dict(zip("abc", measured)), k=8, coverage=0.6)
        answered = np.bincount(c, minlength=400) > 0
        weak = fit(SoftVotes(c, w, np.eye(8)[y], 400, 3), prior_accuracy=measured, blind_evidence=25.0).posterior[answered]
        strong = fit(SoftVotes(c, w, np.eye(8)[y], 400, 3), prior_accuracy=measured, prior_strength=strength,
                     blind_evidence=25.0).posterior[answered]
        right = truth[answered]
        assert abs(strong.max(1).mean() - (strong.argmax(1) == right).mean()) < 0.08
        assert (strong.argmax(1) == right).mean() >= (weak.argmax(1) == right).mean() - 0.02  # 8 clips in 400: a near tie may turn


def test_the_judge_gives_measured_agents_the_measured_strength_and_plugins_the_default(monkeypatch):
    """The split lives in resolve: an annotator listed in `annotator_priors` gets
    `measured_prior_strength` pseudo-answers a row and its measured accuracy; any other (a plugin)
    `prior_strength` and `prior_accuracy`."""
    from agents.judge import reliability

    seen = {}
    real_fit = reliability.fit

    def spy(votes, known=None, **kw):
        seen.update(kw)
        return real_fit(votes, known, **kw)

    monkeypatch.setattr(reliability, "fit", spy)
    cfg = load_config()
    rc = cfg.judge.reliability
    answers = [answer(name, "happiness", clip_id=f"c{i}") for i in range(3) for name in ("face-expression", "my-plugin")]
    res = judge_run([clip(f"c{i}") for i in range(3)], [features(f"c{i}") for i in range(3)], answers, cfg, "r")
    order = [r.annotator_id for r in res.reliability]
    strength = dict(zip(order, np.broadcast_to(seen["prior_strength"], len(order))))
    accuracy = dict(zip(order, np.broadcast_to(seen["prior_accuracy"], len(order))))
    assert strength == {"face-expression": rc.measured_prior_strength, "my-plugin": rc.prior_strength}
    assert accuracy == {"face-expression": rc.annotator_priors["face-expression"], "my-plugin": rc.prior_accuracy}
    assert rc.measured_prior_strength > rc.prior_strength


@pytest.mark.parametrize("seed", range(3))
def test_built_in_agents_gone_constant_lose_their_measured_prior(seed):
    """The issue's case on the real taxonomy and the shipped settings: on some corpus facs-rules says
    happiness and prosody surprise to every clip, while face-expression is 70% right. Their measured
    priors (0.4 and 0.45 on eight labels, `measured_prior_strength` pseudo-answers a row) outweigh a
    blind run capped at `blind_evidence` clips, and let the two outvote the informative one, unless a
    prior counts only for the information the run's answers carry (`information_share`)."""
    rc = load_config().judge.reliability
    taxonomy = list(load_config().taxonomy)
    k = len(taxonomy)
    agents = {"face-expression": 0.7, "facs-rules": str(taxonomy.index("happiness")), "prosody": str(taxonomy.index("surprise"))}
    truth, c, w, y = simulate(seed, 300, agents, k=k)
    fitted = fit(SoftVotes(c, w, np.eye(k)[y], 300, 3), prior_accuracy=np.array([rc.annotator_priors[a] for a in agents]),
                 prior_strength=rc.measured_prior_strength, blind_evidence=rc.blind_evidence)
    assert (fitted.posterior.argmax(1) == truth).mean() >= (y[w == 0] == truth).mean() - 1e-9
    acc = fitted.accuracy()
    assert acc[1] < 0.2 and acc[2] < 0.2 and acc[0] > 0.6


def test_information_share_reads_what_the_answers_carry():
    from agents.judge.reliability import information_share

    k, rng = 8, np.random.default_rng(0)
    varied = np.eye(k)[rng.integers(0, k, 40)]
    constant = np.tile(np.eye(k)[3], (40, 1))
    near = np.eye(k)[np.where(rng.random(40) < 0.9, 3, rng.integers(0, k, 40))]
    few = np.tile(np.eye(k)[3], (5, 1))  # fewer answers than labels: nothing to read
    probs = np.vstack([varied, constant, near, few])
    bounds = [(0, 40), (40, 80), (80, 120), (120, 125)]
    share = information_share(probs, bounds, np.array([0.5, 0.5, 0.5, 0.5]), k)
    assert share[0] == 1.0 and share[1] == 0.0 and 0.0 < share[2] < 1.0 and share[3] == 1.0


def test_known_labels_count_in_full_whatever_the_blind_cap():
    # the swapped annotator of the test above, in a run where the unlabelled clips teach nothing
    truth = np.array([0, 0, 0, 0, 2, 2, 2, 2, 1, 1])
    y = np.array([{0: 2, 2: 0, 1: 1}[t] for t in truth])
    votes = SoftVotes(np.arange(10), np.zeros(10, dtype=int), np.eye(4)[y], 10, 1)
    known = np.zeros((10, 4))
    known[[0, 4, 8], truth[[0, 4, 8]]] = 1.0
    anchored = fit(votes, known, prior_strength=0.5, blind_evidence=0.0).posterior.argmax(1)
    assert (anchored == truth).mean() == 1.0


def test_labels_no_answer_named_lose_their_posterior_over_many_clips(monkeypatch):
    """A corpus of three emotions in a six-label taxonomy: no annotator ever says the other three.
    The fit's smoothing leaves them mass that is not evidence; over 300 clips the reported posterior
    gives them almost none (Laplace: 3/303 of a named label's prior), keeps every clip's label, and
    states a confidence nearer how often it is right. On one clip, their absence says little."""
    from agents.judge import reliability

    rng = np.random.default_rng(3)
    n, k = 300, 6
    truth = rng.integers(0, 3, n)
    clip_, who, probs = [], [], []
    for i, y in enumerate(truth):
        for j, acc in enumerate((0.6, 0.5, 0.45)):
            said = y if rng.random() < acc else rng.choice([x for x in range(3) if x != y])
            p = np.full(k, 0.02)
            p[:3] = 0.1
            p[said] = 0.6
            clip_.append(i), who.append(j), probs.append(p / p.sum())
    votes = SoftVotes(np.array(clip_), np.array(who), np.array(probs), n, 3)
    restricted = fit(votes, prior_accuracy=0.5)
    monkeypatch.setattr(reliability, "_within", lambda q, named, clips: q)
    smoothed = fit(votes, prior_accuracy=0.5)
    one = SoftVotes(np.array([0, 0]), np.array([0, 1]), np.array(probs[:2]), 1, 2)
    one_smoothed = fit(one, prior_accuracy=0.5).posterior[0, 3:].sum()
    assert restricted.posterior[:, 3:].sum(1).max() < 0.01 and np.allclose(restricted.posterior.sum(1), 1)
    assert smoothed.posterior[:, 3:].sum(1).mean() > 0.05  # what the restriction removes is not nothing
    assert (restricted.posterior.argmax(1) == smoothed.posterior.argmax(1)).all()
    acc = (restricted.posterior.argmax(1) == truth).mean()
    gap = {name: abs(f.posterior.max(1).mean() - acc) for name, f in (("restricted", restricted), ("smoothed", smoothed))}
    assert gap["restricted"] < gap["smoothed"], gap
    # a known clip's label is named: a reviewer's "surprise" keeps surprise in play
    monkeypatch.undo()
    known = np.zeros((n, k))
    known[0, 4] = 1.0
    assert fit(votes, known, prior_accuracy=0.5).posterior[1:, 4].mean() > smoothed.posterior[1:, 4].mean() / 2
    # a label an answer stated, though its own distribution put another first, is named too
    stated = np.zeros(k, dtype=bool)
    stated[5] = True
    assert fit(votes, prior_accuracy=0.5, stated=stated).posterior[:, 5].mean() > smoothed.posterior[:, 5].mean() / 2
    # on one clip the unnamed labels keep about K'/(1 + K') = 3/4 of their weight, not 3/303
    one_kept = fit(one, prior_accuracy=0.5).posterior[0, 3:].sum()
    assert one_kept > 0.1 and one_kept > 0.6 * one_smoothed, (one_kept, one_smoothed)


def test_a_label_an_answer_states_is_named_even_where_its_distribution_puts_another_first():
    # an LLM answer may conclude "disgust" while its distribution leans to anger: disgust is on the
    # table, and its answer's S_rec is the consensus's belief in it, not a scaled-away remainder
    n = 30
    answers = []
    for i in range(n):
        answers.append(answer("sure", "anger", clip_id=f"c{i}"))
        answers.append(answer("hedging", "disgust", clip_id=f"c{i}", dist={"anger": 0.6, "disgust": 0.4}))
    res = judge_run([clip(f"c{i}") for i in range(n)], [features(f"c{i}") for i in range(n)], answers, load_config(), "r")
    hedging = [j.s_rec for j in res.judgements if j.annotator_id == "hedging"]
    dist = {p.label: p.prob for p in res.consensus[0].distribution}
    assert max(dist, key=dist.get) == "anger" and dist["disgust"] > 0.1, dist
    assert min(hedging) > 0.1, hedging


def test_calibration_starts_from_the_stated_prior_and_learns_from_labelled_clips():
    prior = fit_calibrator(np.array([]), np.array([]))
    assert prior.method == "prior" and prior(np.array([0.2, 0.5, 0.9])) == pytest.approx([0.2, 0.5, 0.9])
    # an overconfident model: its 0.9s are right half the time
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.8, 1.0, 400)
    right = (rng.random(400) < 0.5).astype(float)
    learned = fit_calibrator(raw, right)
    assert learned.method == "centred-isotonic" and learned.n_labelled == 400
    assert learned(np.array([0.9]))[0] == pytest.approx(0.5, abs=0.1)
    few = fit_calibrator(raw[:3], right[:3])  # three clips bend the prior only a little
    assert abs(few(np.array([0.9]))[0] - 0.9) < 0.3


@pytest.mark.parametrize("raw", [0.8, 0.95, 0.99])
def test_labelled_answers_calibrate_where_they_are(raw):
    """Thirty labelled answers at one raw confidence, all wrong: the map says so at that confidence,
    wherever it lies. Placed at the mean of its points, their block sat among the prior's pseudo-clips
    below them, and the map rose from there toward the prior's point at 1.0 (0.99 calibrated to 0.91)."""
    wrong = fit_calibrator(np.full(30, raw), np.zeros(30), 10.0)
    assert wrong(np.array([raw]))[0] < 0.2
    right = fit_calibrator(np.full(30, raw - 0.4), np.ones(30), 10.0)
    assert right(np.array([raw - 0.4]))[0] > 0.8


def test_the_calibrated_confidence_keeps_the_consensus_ranking():
    """A model right more often the surer it is, but not smoothly: plain isotonic regression pools
    long runs of clips into steps of one confidence. The centred map runs between the steps' centres,
    so a surer clip always gets a higher confidence, and it stays as close to the outcomes."""
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(1)
    raw = rng.uniform(0.3, 1.0, 300)
    right = (rng.random(300) < raw - 0.1).astype(float)
    cal = fit_calibrator(raw, right)
    xs = np.sort(raw)
    mapped = cal(xs)
    inner = (xs > cal.xs[1]) & (xs < cal.xs[-2])  # between the first and last block centres it rises strictly
    assert np.all(np.diff(mapped[inner]) > 0)
    stairs = IsotonicRegression(out_of_bounds="clip").fit(raw, right).predict(xs)
    assert len(np.unique(stairs)) < len(xs) / 5  # the staircase the plain fit makes of these clips
    # no worse a fit to the outcomes (Brier score) than the staircase fitted without any prior
    assert np.mean((cal(raw) - right) ** 2) <= np.mean((IsotonicRegression(out_of_bounds="clip").fit(raw, right).predict(raw) - right) ** 2) + 0.01


def test_routing_flags_the_fewest_clips_that_reach_the_target():
    conf = np.array([0.99, 0.95, 0.9, 0.85, 0.6, 0.3])
    cut = cut_for_target(conf, 0.9)
    assert cut.n_accepted == 4 and cut.threshold == 0.85  # mean of the top four is 0.9225; adding 0.6 drops below
    assert cut.estimated_accuracy == pytest.approx(conf[:4].mean())
    assert cut.ci_low < cut.estimated_accuracy < cut.ci_high
    tied = cut_for_target(np.array([0.95, 0.8, 0.8]), 0.9)
    assert tied.n_accepted == 1  # the two 0.8s go together or not at all
    assert cut_for_target(np.array([0.5, 0.4]), 0.9).n_accepted == 0
    est, lo, hi = accepted_estimate(np.full(200, 0.9))
    assert est == pytest.approx(0.9) and 0.84 < lo < 0.9 < hi < 0.95


def _panel_run(known=None, gold=None):
    """Eight clips of one face, answered by a careful annotator and one that always says neutral."""
    clips = [clip(f"c{i}") for i in range(8)]
    feats = [features(f"c{i}") for i in range(8)]
    good_ev = [ev("e1", "face", "AU12 (lip corner puller) active", 10.4, 11.2, "faces[track=0].action_units[AU12]")]
    answers = []
    for i in range(8):
        answers.append(answer("careful", "happiness" if i < 6 else "sadness", good_ev, clip_id=f"c{i}",
                              dist={"happiness": 0.8, "sadness": 0.2} if i < 6 else {"sadness": 0.7, "happiness": 0.3}))
        answers.append(answer("flat", "neutral", [ev("e1", "context", "nothing stands out")], clip_id=f"c{i}"))
    return judge_run(clips, feats, answers, load_config(), "r", gold=gold, known=known)


def test_the_judge_reports_reliability_confidence_and_routing():
    res = _panel_run()
    rel = {r.annotator_id: r for r in res.reliability}
    assert rel["careful"].estimated_accuracy > rel["flat"].estimated_accuracy
    assert [c.label for c in res.consensus[:6]] == ["happiness"] * 6  # the constant "neutral" does not outvote
    for c in res.consensus:
        assert c.method == "reliability" and c.review_score == c.confidence and 0 < c.confidence < 1
    by = {j.annotation_id: j for j in res.judgements}
    assert by["careful:c0"].s_rec_basis == "consensus" and by["careful:c0"].s_rec > by["flat:c0"].s_rec
    assert res.routing.mode == "target" and res.routing.target_accuracy == 0.9
    accepted = [c for c in res.consensus if not c.needs_review]
    assert res.routing.n_accepted == len(accepted)
    if accepted:
        assert res.routing.estimated_accuracy == pytest.approx(np.mean([c.confidence for c in accepted]))
        # the cut: every accepted clip is at least as confident as the threshold, every low_score one below it
        assert all(c.confidence >= res.routing.threshold for c in accepted)
    assert all(c.confidence < res.routing.threshold for c in res.consensus if "low_score" in c.flags)


def test_reviewed_clips_become_known_labels_and_refit_the_calibration():
    before = _panel_run()
    reviewed = {"c0": ["happiness"], "c1": ["happiness"], "c6": ["sadness"]}
    after = _panel_run(known=reviewed)
    assert after.routing.calibrated_on == 3 and after.routing.calibration == "centred-isotonic"
    cons = {c.clip_id: c for c in after.consensus}
    assert cons["c0"].confidence == 1.0 and cons["c6"].label == "sadness"
    # reviewers agreed with the model: the unreviewed clips are trusted more, and fewer are flagged
    conf_before = {c.clip_id: c.confidence for c in before.consensus}
    assert cons["c3"].confidence > conf_before["c3"]
    assert sum(c.needs_review for c in after.consensus) <= sum(c.needs_review for c in before.consensus)
    # known labels from review are not gold: S_rec stays the model's estimate
    assert {j.s_rec_basis for j in after.judgements if j.label} == {"consensus"}
    rel = {r.annotator_id: r for r in after.reliability}
    assert rel["careful"].gold_accuracy == 1.0 and rel["flat"].gold_accuracy == 0.0 and rel["careful"].n_gold == 3


def test_where_labels_are_known_a_cue_kind_earns_the_support_it_has_been_worth():
    """The expression model says happiness on every clip, surely; the reviewers say six of them were
    sadness. The model's margin backs a happiness answer citing that expression fully; the verdicts
    show what such support has been worth, and S_reason on the unreviewed clips follows them."""
    clips = [clip(f"c{i}") for i in range(10)]
    sure = [face(t, i, {"AU12": (0.9, True)}, {"happiness": 0.99, "neutral": 0.01}) for t, i in ((10.5, 12), (11.0, 24))]
    feats = [features(f"c{i}").model_copy(update={"faces": sure}) for i in range(10)]
    expr = [ev("e1", "face", "expression model: happiness 0.99", 10.4, 11.2, "faces[track=0].expression")]
    answers = [answer("face", "happiness", expr, clip_id=f"c{i}") for i in range(10)]
    blind = judge_run(clips, feats, answers, load_config(), "r")
    taught = judge_run(clips, feats, answers, load_config(), "r", known={f"c{i}": ["sadness"] for i in range(6)})
    reason = {name: {j.clip_id: j for j in res.judgements} for name, res in (("blind", blind), ("taught", taught))}
    for i in range(6, 10):
        before, after = reason["blind"][f"c{i}"], reason["taught"][f"c{i}"]
        assert before.claims[0].verdict == after.claims[0].verdict == "supported"  # the fact stays true
        assert before.claims[0].support > 0.95 and after.claims[0].support < 0.4
        assert after.s_reason < before.s_reason - 0.3


def test_where_the_run_fitted_a_voice_model_voice_claims_are_read_through_it():
    """Answers cite the same pitch, one says anger and one happiness. Without a voice model the
    judge cannot tell them apart (one clip: no voice baseline for the literature's profiles, which
    would read a raised pitch as aroused either way). The voice model the run fitted on its labelled
    clips reads this voice as anger: the anger answer's claim is supported, the happiness answer's
    is not, and the claim is its own kind of cue, calibrated apart from the profiles'. Of sadness,
    which the labelled clips never showed it, the model says nothing."""
    from agents.judge.inference import claim_kind
    from evidence.grounding import parse_cue
    from schemas.features import LabelProb, LearnedVoice

    pitch = [ev("e1", "audio", "mean pitch 220 Hz, raised", 10.0, 14.0, "prosody.pitch_mean_hz")]
    answers = [answer("loud", "anger", pitch, clip_id="c1"), answer("glad", "happiness", pitch, clip_id="c1"),
               answer("low", "sadness", pitch, clip_id="c1")]
    model = LearnedVoice(distribution=[LabelProb(label="anger", prob=0.7), LabelProb(label="happiness", prob=0.2),
                                       LabelProb(label="neutral", prob=0.1)], n_labelled=30, cv_accuracy=0.7)
    runs = {name: judge_run([clip("c1")], [features("c1")], answers, load_config(), "r", learned=learned)
            for name, learned in (("profiles", None), ("model", {"c1": model}))}
    by = {name: {j.annotator_id: j for j in res.judgements} for name, res in runs.items()}
    assert by["model"]["loud"].claims[0].verdict == "supported"  # the fact check is the same either way
    # margin 0.5 over happiness, read linearly (a model's graded reading): for anger, as much against happiness
    assert by["model"]["loud"].claims[0].support == pytest.approx(0.75)
    assert by["model"]["glad"].claims[0].support == pytest.approx(0.25)
    assert by["model"]["loud"].s_reason > by["model"]["glad"].s_reason
    assert by["model"]["low"].claims[0].support is None  # a label the model was never shown: it cannot say
    assert by["profiles"]["loud"].claims[0].support == by["profiles"]["glad"].claims[0].support
    assert by["profiles"]["loud"].s_reason == by["profiles"]["glad"].s_reason
    cue = parse_cue(pitch[0].cue, pitch[0].feature_ref)
    from agents.judge.judge_index import JudgeIndex

    with_model = JudgeIndex(clip("c1"), features("c1"), taxonomy=frozenset(load_config().taxonomy), learned_voice=model)
    assert claim_kind(pitch[0], cue, with_model) == "learned_voice" and claim_kind(pitch[0], cue) == "voice"


def _calibrated_answers(seed: int, n: int, k: int = 4, strength: float = 1.2):
    """A classifier whose probabilities are exactly Bayes' rule: x ~ N(strength·e_truth, I), p = softmax(strength·x)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    x = rng.normal(size=(n, k)) + strength * np.eye(k)[truth]
    logits = strength * x
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    return truth, p / p.sum(axis=1, keepdims=True)


def test_a_calibrated_answer_enters_the_consensus_as_the_probability_it_is():
    """Pushed through a learned confusion matrix, a calibrated classifier's soft answers get flattened
    and close calls reordered; entered as likelihood ratios, the consensus keeps what it knows."""
    from agents.judge.reliability import calibrated_offset

    truth, p = _calibrated_answers(3, 600)
    votes = SoftVotes(np.arange(600), np.zeros(600, dtype=int), p, 600, 1)
    rest, calibrated = calibrated_offset(votes, np.array([True]))
    assert len(rest.clip) == 0 and calibrated.log_likelihood.shape == (600, 4) and calibrated.answered.all()
    fitted = fit(rest, calibrated=calibrated)
    # the run's class prior is estimated, not exactly uniform: it may tip a near-tie
    assert (fitted.posterior.argmax(1) == p.argmax(1)).mean() > 0.97
    # the probabilities themselves survive: what the consensus believes of its top label is what the classifier said
    assert np.abs(fitted.posterior.max(1) - p.max(1)).mean() < 0.05
    as_votes = fit(votes)  # the same answers as opinions with a confusion matrix
    assert (fitted.posterior.argmax(1) == truth).mean() >= (as_votes.posterior.argmax(1) == truth).mean()


def test_a_label_the_calibrated_model_never_saw_gains_nothing_from_it():
    from agents.judge.reliability import calibrated_offset

    # a model shown anger, fear and neutral only: no probability on happiness (index 1)
    p = np.array([[0.2, 0.0, 0.3, 0.5], [0.6, 0.0, 0.2, 0.2], [0.3, 0.0, 0.4, 0.3]])
    _, calibrated = calibrated_offset(SoftVotes(np.arange(3), np.zeros(3, dtype=int), p, 3, 1), np.array([True]))
    for row in calibrated.log_likelihood:
        assert row[1] == min(row[[0, 2, 3]])


def test_an_agent_whose_input_a_learned_model_reads_does_not_vote_twice():
    """prosody's rules read eGeMAPS functionals the learned voice model also reads: where that model
    answered, prosody's answers are scored but do not vote; where it abstained, prosody's vote counts."""
    clips = [clip(f"c{i}") for i in range(8)]
    feats = [features(f"c{i}", faces=False) for i in range(8)]
    pitch = [ev("e1", "prosody", "pitch 260 Hz", 10.7, 11.1)]
    answers = []
    for i in range(8):
        answers.append(answer("prosody", "anger", pitch, clip_id=f"c{i}", dist={"anger": 0.9, "fear": 0.1}))
        if i < 6:  # the learned model answers six clips: fear on three, anger on three
            lean = 0.55 + 0.05 * i
            said = "fear" if i < 3 else "anger"
            other = "anger" if i < 3 else "fear"
            answers.append(answer("voice-learned", said, pitch, clip_id=f"c{i}", dist={said: lean, other: 0.25, "neutral": 0.75 - lean}))
    res = judge_run(clips, feats, answers, load_config(), "r")
    labels = {c.clip_id: c.label for c in res.consensus}
    # prosody's confident "anger" did not outvote the learned model
    assert [labels[f"c{i}"] for i in range(6)] == ["fear"] * 3 + ["anger"] * 3
    assert labels["c6"] == labels["c7"] == "anger"  # with no learned answer, prosody's vote decides
    rel = {r.annotator_id: r for r in res.reliability}
    assert rel["voice-learned"].recall == []  # no confusion matrix is claimed for a calibrated model
    # its estimate is what the consensus believes of its labels
    belief = [next(p.prob for p in c.distribution if p.label == c.label) for c in res.consensus[:6]]
    assert rel["voice-learned"].estimated_accuracy == pytest.approx(np.mean(belief), abs=1e-3)
    by = {j.annotation_id: j for j in res.judgements}
    assert by["prosody:c0"].s_rec < by["voice-learned:c0"].s_rec  # prosody is still scored, against the consensus


def test_known_labels_do_not_pad_the_accepted_set():
    """Eighteen of twenty clips carry known labels, and the model was right on half of them: the two
    it labels alone are a coin flip. Counted with the known ones (confidence 1) the twenty average
    over 0.9, which would let both through at target 0.9; routing decides on the model's clips only."""
    n = 20
    clips = [clip(f"c{i}") for i in range(n)]
    feats = [features(f"c{i}") for i in range(n)]
    smile = [ev("e1", "face", "AU12 (lip corner puller) active", 10.4, 11.2, "faces[track=0].action_units[AU12]")]
    answers = [answer("careful", "happiness", smile, clip_id=f"c{i}", dist={"happiness": 0.55, "sadness": 0.45}) for i in range(n)]
    known = {f"c{i}": ["happiness" if i % 2 else "sadness"] for i in range(n - 2)}
    res = judge_run(clips, feats, answers, load_config(), "r", known=known)
    r = res.routing
    assert (r.n_clips, r.n_known) == (2, n - 2)
    cons = {c.clip_id: c for c in res.consensus}
    assert cons["c18"].confidence < 0.8 and cons["c18"].needs_review and cons["c19"].needs_review
    assert r.n_accepted == 0 and r.estimated_accuracy is None


def test_the_interval_widens_when_labelled_people_disagree():
    """The same labelled clips, once as one person each and once as two people on whom the model
    is right 95% and 45% of the time: the second says less about a third person, and its interval
    around the accepted clips' accuracy is wider."""
    from agents.judge.calibration import accepted_interval

    rng = np.random.default_rng(0)
    raw = rng.uniform(0.6, 0.9, 80)
    right = np.r_[rng.random(40) < 0.95, rng.random(40) < 0.45].astype(float)
    accepted = rng.uniform(0.6, 0.9, 50)
    one_each = accepted_interval(accepted, raw, right, [f"p{i}" for i in range(80)])
    two_people = accepted_interval(accepted, raw, right, ["a"] * 40 + ["b"] * 40)
    # a third wider or more (centred isotonic maps bend less between resamples than staircases do)
    assert two_people[1] - two_people[0] > 1.25 * (one_each[1] - one_each[0])
    assert accepted_interval(accepted, raw, right, ["a"] * 40 + ["b"] * 40) == two_people  # seeded


def _weak_panel_run(seed: int, n: int = 400, n_known: int = 30, annotators: int = 3, accuracy: float = 0.4, k: int = 4):
    """Weak annotators, each confusing the labels its own way, and a few clips with known labels."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, n)
    clip_, who, probs = [], [], []
    for j in range(annotators):
        confusion = rng.dirichlet(np.full(k, 0.5), size=k)
        np.fill_diagonal(confusion, 0.0)
        confusion = confusion / confusion.sum(axis=1, keepdims=True) * (1 - accuracy)
        np.fill_diagonal(confusion, accuracy)
        for i in range(n):
            clip_.append(i)
            who.append(j)
            probs.append(np.eye(k)[rng.choice(k, p=confusion[truth[i]])])
    votes = SoftVotes(np.array(clip_), np.array(who), np.array(probs), n, annotators)
    known = np.zeros((n, k))
    labelled = rng.choice(n, n_known, replace=False)
    known[labelled, truth[labelled]] = 1.0
    return truth, votes, known


def test_calibration_reads_labelled_clips_from_fits_that_did_not_see_their_labels():
    """The confusion matrices are learned from the labelled clips themselves, so the fit's belief
    about those clips is right more often than about the rest; a calibration fitted on it said the
    unlabelled clips were right 0.10-0.14 more often than they were. Cross-fitted beliefs (each
    labelled clip read by a fit without its label) put it within a few hundredths, over 12 runs."""
    from functools import partial

    from agents.judge.resolve import held_out_beliefs

    stated = {"in-sample": [], "cross-fitted": []}
    for seed in range(12):
        truth, votes, known = _weak_panel_run(seed)
        fitting = partial(fit, votes, prior_strength=2.0, blind_evidence=25.0)
        fitted = fitting(known)
        is_known = known.sum(axis=1) > 0
        groups = [f"person{i % 12}" for i in range(len(truth))]
        right_unlabelled = (fitted.posterior[~is_known].argmax(axis=1) == truth[~is_known]).mean()
        for name, free in (("in-sample", fitted.free_posterior),
                           ("cross-fitted", held_out_beliefs(fitting, known, fitted.free_posterior, groups))):
            labelled = free[is_known]
            cal = fit_calibrator(labelled.max(axis=1), (labelled.argmax(axis=1) == truth[is_known]).astype(float), 10.0)
            stated[name].append(cal(fitted.free_posterior[~is_known].max(axis=1)).mean() - right_unlabelled)
        # an unlabelled clip's belief is the full fit's
        assert np.array_equal(held_out_beliefs(fitting, known, fitted.free_posterior, groups)[~is_known],
                              fitted.free_posterior[~is_known])
    assert np.mean(stated["in-sample"]) > 0.08  # what the calibration claimed beyond the truth before
    assert abs(np.mean(stated["cross-fitted"])) < 0.04
    assert np.mean(np.abs(stated["cross-fitted"])) < np.mean(np.abs(stated["in-sample"]))


def test_the_judge_calibrates_on_beliefs_from_fits_without_the_labels(monkeypatch):
    """Wired through judge_run: the labelled clips' beliefs the calibration is fitted on come from
    fits that left those clips' labels out."""
    import agents.judge.resolve as resolve_module

    seen = []
    real = resolve_module.held_out_beliefs

    def spy(fitting, known_rows, free, groups):
        out = real(fitting, known_rows, free, groups)
        seen.append((known_rows.sum(axis=1) > 0, free, out))
        return out

    monkeypatch.setattr(resolve_module, "held_out_beliefs", spy)
    known = {"c0": ["happiness"], "c1": ["happiness"], "c6": ["sadness"]}
    res = _panel_run(known=known)
    [(labelled, free, held)] = seen
    assert labelled.sum() == 3
    assert not np.allclose(held[labelled], free[labelled])  # read without their own labels
    assert np.array_equal(held[~labelled], free[~labelled])
    # and the confidence the run states is the calibration fitted on those held-out beliefs
    labels = load_config().taxonomy
    clip_ids = [c.clip_id for c in res.consensus]
    def calibrator(beliefs):
        right = [labels[k] in known[c] for c, k in zip(np.array(clip_ids)[labelled], beliefs[labelled].argmax(axis=1))]
        return fit_calibrator(beliefs[labelled].max(axis=1), np.array(right, dtype=float),
                              load_config().judge.reliability.calibration_prior_strength)

    from_held, in_sample = calibrator(held), calibrator(free)
    unlabelled = free[~labelled].max(axis=1)
    stated = np.array([c.confidence for c, lab in zip(res.consensus, labelled) if not lab])
    assert stated == pytest.approx(from_held(unlabelled), abs=1e-9)
    assert not np.allclose(from_held(unlabelled), in_sample(unlabelled))  # the test tells the two apart
