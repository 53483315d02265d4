"""The Label Studio labeling interface for stage-5 review, built from the configuration.

The reviewer sees the clip (video and its audio track, kept in sync), the transcript by speaker, the
model's step-by-step rationale and the evidence it cited, and answers: the emotion (over the
taxonomy), its intensity, whether the cited evidence holds, and a free-text correction.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from schemas import EmoforgeConfig

# control names: push.py writes predictions for them and pull.py reads answers from them
EMOTION = "emotion"
INTENSITY = "intensity"
EVIDENCE_OK = "evidence_correct"
CORRECTION = "correction"
MAX_RATING = 5  # the intensity stars; pull.py maps a rating r to r / MAX_RATING (annotators use 0..1)
EVIDENCE_CHOICES = ("yes", "partly", "no")  # "partly" is not a yes: pull.py records it as False

# task data keys the interface reads (push.py fills them)
DATA_KEYS = ("video", "audio", "fps", "transcript", "rationale", "evidence", "clip_id", "model_label")


def label_config(config: EmoforgeConfig) -> str:
    """The labeling config XML; the project is created with it and validated by the server."""
    choice = "multiple" if config.multi_label else "single"
    choices = "\n".join(f"      <Choice value={quoteattr(t)}/>" for t in config.taxonomy)
    # Video and Audio in one sync group: seeking or playing one moves the other. The video's frame
    # rate comes from the task (sources differ); without it frame stepping and sync drift.
    return f"""<View>
  <Header value="Clip $clip_id (model says: $model_label)"/>
  <View style="display: flex; gap: 1em;">
    <View style="flex: 60%;">
      <Video name="video" value="$video" frameRate="$fps" sync="clip"/>
      <Audio name="audio" value="$audio" sync="clip"/>
      <Header value="Transcript" size="5"/>
      <Paragraphs name="transcript" value="$transcript" layout="dialogue" nameKey="author" textKey="text"/>
    </View>
    <View style="flex: 40%;">
      <Header value="Model rationale" size="5"/>
      <HyperText name="rationale" value="$rationale" inline="true"/>
      <Header value="Evidence the model cited" size="5"/>
      <HyperText name="evidence" value="$evidence" inline="true"/>
    </View>
  </View>
  <Header value="Which emotion is expressed?" size="5"/>
  <Choices name="{EMOTION}" toName="video" choice="{choice}" showInline="true" required="true">
{choices}
  </Choices>
  <Header value="Intensity" size="5"/>
  <Rating name="{INTENSITY}" toName="video" maxRating="{MAX_RATING}" icon="star" size="medium"/>
  <Header value="Is the cited evidence correct?" size="5"/>
  <Choices name="{EVIDENCE_OK}" toName="evidence" choice="single" showInline="true">
{chr(10).join(f'    <Choice value="{c}"/>' for c in EVIDENCE_CHOICES)}
  </Choices>
  <Header value="Correction (what the model got wrong, optional)" size="5"/>
  <TextArea name="{CORRECTION}" toName="video" rows="3" editable="true" maxSubmissions="1"/>
</View>
"""
