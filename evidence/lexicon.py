"""The emotion vocabulary and the valence lexicon that both the annotators and the evidence check
read: the words a model uses for each basic emotion, and VADER's valence of a text."""

from __future__ import annotations

from functools import lru_cache

# synonym -> basic emotion (Ekman's six + contempt + neutral); forms a model is likely to write
SYNONYMS: dict[str, list[str]] = {
    "happiness": ["happy", "happiness", "joy", "joyful", "joyous", "delighted", "delight", "cheerful", "glad", "amused",
                  "amusement", "content", "contentment", "pleased", "elated", "excited", "excitement", "laughing", "smiling"],
    "sadness": ["sad", "sadness", "unhappy", "sorrow", "sorrowful", "grief", "grieving", "crying", "depressed", "upset",
                "melancholy", "miserable", "disappointed", "disappointment", "gloomy", "tearful"],
    "anger": ["anger", "angry", "mad", "furious", "fury", "rage", "irritated", "irritation", "annoyed", "annoyance",
              "frustrated", "frustration", "hostile", "outraged"],
    "fear": ["fear", "afraid", "scared", "fearful", "frightened", "terrified", "terror", "anxious", "anxiety", "nervous",
             "worried", "worry", "panic", "panicked"],
    "surprise": ["surprise", "surprised", "astonished", "astonishment", "amazed", "amazement", "shocked", "shock",
                 "startled", "stunned"],
    "disgust": ["disgust", "disgusted", "revolted", "repulsed", "repulsion", "grossed out", "gross", "aversion"],
    "contempt": ["contempt", "contemptuous", "scorn", "scornful", "disdain", "disdainful", "sneering"],
    "neutral": ["neutral", "calm", "no emotion", "none", "indifferent", "flat", "emotionless", "composed"],
}


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=4096)
def vader_compound(text: str) -> float:
    """VADER's compound valence of a text, in [-1, 1]: one analyser, shared by the agents and the judge."""
    return _vader().polarity_scores(text)["compound"]
