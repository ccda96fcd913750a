# Over 800 lines on purpose: the whole rules.yaml schema and its error messages read in one place, key by key.
"""`rules.yaml`: what to listen for and how to treat it, validated once into pydantic models.

Every mistake is reported with the file, the line, the field path, what was expected and what was
found (`rules.yaml:14 brands[0].keywords: expected a list of strings, got 'acme'`). Code never
reads raw YAML dicts after `load_rules`.
"""
from __future__ import annotations

import difflib
import os
import re
import reprlib
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from pipeline.alerts import transparency_cues
from pipeline.mention import CATEGORIES, DISMISS_REASONS, INTENTS, SENTIMENTS, SEVERITIES, TRANSPARENCY_KINDS

DEFAULT_RULES = "rules.yaml"
# A few aliases can stand for billions of values ("billion laughs": 11 lines, 43 million strings, 7 s and
# 0.7 GB to validate, 300 MB of errors); a real rules.yaml holds a few thousand at most.
MAX_YAML_VALUES = 100_000
MAX_PROBLEMS = 100   # listed by `rules check`; then how many more
# An error shows a bounded picture of the value it got: a 1 MB string or a huge list is cut.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxstring, _SHOWN.maxother = 2, 4, 4, 60, 60
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def shown(value: Any) -> str:
    """repr of a value as an error shows it: at most a line, whatever the value."""
    return _SHOWN.repr(value)


def parse_duration(value: Any) -> timedelta:
    """'90s', '15m', '2h', '1d', '1w' or a number of seconds, as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '30m' or '2h', got {shown(value)}")
    if isinstance(value, (int, float)):
        return timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration like '30m' or '2h', got {shown(value)}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(f"expected a list of strings, got {shown(value)}")
    return value


StringList = Annotated[list[str], BeforeValidator(_strings)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    """A condition's value: one string, or a list of strings (any of them matches)."""
    return [value] if isinstance(value, str) else value


OneOrMany = Annotated[list[str], BeforeValidator(_one_or_many)]


class Category(Strict):
    """A complaint category of the brand's own, learned from a few examples when the rules load
    (pipeline/models/categories.py): `category` in the output is its `name`."""
    name: str = Field(min_length=1, max_length=40, pattern=r"^[^\s]+$")   # no spaces: a label, stored in 40 characters
    description: str = ""
    examples: StringList = Field(min_length=2, max_length=200)

    @field_validator("examples")
    @classmethod
    def _no_blank_examples(cls, value: list[str]) -> list[str]:
        if any(not example.strip() for example in value):
            raise ValueError("an example is empty; write a post as a customer would")
        return value


class Brand(Strict):
    name: str = Field(min_length=1)
    keywords: StringList = Field(min_length=1)
    exclude: StringList = []
    competitors: StringList = []
    owned_domains: StringList = []
    official_accounts: StringList = []
    affiliated_accounts: StringList = []
    categories: list[Category] | None = None   # this brand's complaint categories, instead of the shared ones


class Source(Strict):
    name: str = Field(min_length=1)
    type: Literal["file", "rss", "twitter", "reddit", "mastodon", "bluesky"]
    interval: Duration = timedelta(minutes=15)
    enabled: bool = True
    url: str | None = None
    query: str | None = None
    subreddits: StringList = []
    path: str | None = None
    instance: str | None = None
    hashtags: StringList = []
    mode: Literal["search", "submissions", "comments"] = "search"
    timeout: Duration = timedelta(seconds=20)
    max_items: int = Field(default=500, ge=1, le=100_000)
    idle: Duration = timedelta(seconds=5)   # streams (bluesky): a cycle ends after this long without events
    profiles: bool = True                   # bluesky: look authors up on the public AppView

    @model_validator(mode="after")
    def _needs_per_type(self) -> "Source":
        needed = {"rss": "url", "file": "path", "mastodon": "instance"}.get(self.type)
        if needed and not getattr(self, needed):
            raise ValueError(f"a '{self.type}' source needs '{needed}'")
        if self.type == "reddit" and not self.subreddits:
            raise ValueError("a 'reddit' source needs 'subreddits'")
        return self


def _clock(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        hours, minutes = (int(part) for part in value.strip().split(":"))
        if hours == 24 and minutes == 0:
            return None
        return dt_time(hours, minutes)
    if isinstance(value, int) and not isinstance(value, bool):   # YAML 1.1 reads 08:00 as 480 (sexagesimal)
        return dt_time(*divmod(value, 60)) if 0 <= value < 24 * 60 else value
    return value


Clock = Annotated[dt_time | None, BeforeValidator(_clock)]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class WorkingHours(Strict):
    """When the SLA clock runs: these days, from `start` to `end` local time (in `queue.timezone`)."""
    days: list[Literal[WEEKDAYS]] = list(WEEKDAYS[:5])
    start: Clock = dt_time(9, 0)
    end: Clock = dt_time(18, 0)

    @model_validator(mode="after")
    def _ordered(self) -> "WorkingHours":
        if self.end is not None and self.start is not None and self.end <= self.start:
            raise ValueError(f"'end' ({self.end:%H:%M}) must be after 'start' ({self.start:%H:%M})")
        if not self.days:
            raise ValueError("'days' needs at least one working day")
        return self


class Band(Strict):
    """A priority band with its own targets: the first band whose `min_priority` a case reaches applies."""
    name: str = Field(min_length=1)
    min_priority: int = Field(ge=0, le=100)
    first_response: Duration
    resolution: Duration | None = None


class SeverityWeights(Strict):
    disapproval: float = 4
    accusation: float = 8
    blame: float = 10


class Weights(Strict):
    """Points each signal adds to a mention's priority (the total is capped at 100)."""
    complaint: float = 45          # × complaint probability
    negative: float = 15           # × negative probability, when the sentiment is negative
    question: float = 15           # an open question
    severity: SeverityWeights = SeverityWeights()
    reach: float = 20              # × log-scaled followers, full at queue.followers_for_max_reach
    transparency: float = 10       # per transparency risk
    deception: float = 25          # a public accusation of deception, on top (for comms)
    crisis: float = 15             # the mention belongs to an alert (spike)


ASSIGNMENTS = ("manual", "round_robin", "least_open")


class Escalation(Strict):
    """Who is notified when a case is due soon and when it breaches its first-response SLA, once per case
    and stage: webhook names (alerts.webhooks) or e-mail addresses (sent through `smtp`)."""
    due_soon: StringList = []
    breached: StringList = []


class Queue(Strict):
    first_response_sla: Duration = timedelta(hours=1)
    resolution_sla: Duration = timedelta(days=1)
    min_priority: int = Field(default=0, ge=0, le=100)
    followers_for_max_reach: int = Field(default=100_000, gt=0)
    timezone: str = "UTC"
    working_hours: WorkingHours | None = None     # None: the SLA clock runs around the clock
    bands: list[Band] = []                        # none: every case gets first_response_sla / resolution_sla
    due_soon: Duration = timedelta(minutes=15)    # an item this close to its SLA stands out
    weights: Weights = Weights()
    assignment: Literal[ASSIGNMENTS] = "manual"   # new cases: left for Claim next, or given to an agent at once
    max_open_per_agent: int | None = Field(default=None, ge=1)   # automatic assignment skips agents holding this many
    escalation: Escalation = Escalation()         # who hears of cases due soon and breached

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as 'Europe/Paris'") from None
        return value

    def band(self, priority: int) -> Band:
        for band in sorted(self.bands, key=lambda b: -b.min_priority):
            if priority >= band.min_priority:
                return band
        return Band(name="default", min_priority=0, first_response=self.first_response_sla,
                    resolution=self.resolution_sla)


class Goal(Strict):
    name: str
    metric: Literal[
        "median_first_response", "negative_share", "resolution_rate", "share_of_voice", "net_sentiment"
    ]
    target: float | Duration
    brand: str | None = None
    direction: Literal["below", "above"] = "below"


def _label_names(value: Any) -> Any:
    """The model's label names → ours. YAML reads unquoted yes/no/on/off/true/false as booleans."""
    if not isinstance(value, dict):
        return value
    out = {}
    for name, ours in value.items():
        if not isinstance(name, str):
            raise ValueError(f"expected the model's label names (its config.id2label values, such as 'LABEL_0' "
                             f"or 'Negative'; quote yes/no/true/false) as keys, got {shown(name)}")
        out[name] = {True: "yes", False: "no"}.get(ours, ours) if isinstance(ours, bool) else ours
    return out


def _label_map(classes: tuple[str, ...]) -> Any:
    return Annotated[dict[str, Literal[classes]], BeforeValidator(_label_names)]


# Our classes per task, in the column order the pipeline uses.
SENTIMENT_CLASSES = SENTIMENTS
COMPLAINT_CLASSES = ("no", "yes")
SentimentLabels = _label_map(SENTIMENT_CLASSES)
ComplaintLabels = _label_map(COMPLAINT_CLASSES)


class TaskModel(Strict):
    """A sequence-classification model (Hugging Face id or local path) that does one task."""
    classes: ClassVar[tuple[str, ...]] = ()
    model: str = Field(min_length=1)
    labels: dict[str, str] = {}
    max_length: int | None = Field(default=None, ge=8, le=512)   # default: models.max_length
    batch_size: int | None = Field(default=None, ge=1, le=1024)  # default: models.batch_size


class SentimentModel(TaskModel):
    classes: ClassVar[tuple[str, ...]] = SENTIMENT_CLASSES
    labels: SentimentLabels = {}


class ComplaintModel(TaskModel):
    classes: ClassVar[tuple[str, ...]] = COMPLAINT_CLASSES
    labels: ComplaintLabels = {}


class TaskModels(Strict):
    """One optional model per task; a task without one keeps the trained heads. A new task is a field."""
    sentiment: SentimentModel | None = None
    complaint: ComplaintModel | None = None

    def configured(self) -> dict[str, TaskModel]:
        return {task: spec for task in type(self).model_fields if (spec := getattr(self, task)) is not None}


class Models(Strict):
    encoder: str = "embedded"
    heads: str | None = None
    intent_heads: str | None = None   # intent, category and severity heads (default: pipeline/models/heads_extra)
    batch_size: int = Field(default=32, ge=1, le=1024)
    max_length: int = Field(default=128, ge=8, le=512)
    backend: Literal["onnx", "onnx-int8", "torch"] | None = None   # default: what the heads were trained on
    tasks: TaskModels = TaskModels()


class Coordination(Strict):
    """When near-identical posts from several accounts count as coordinated (pipeline/alerts/transparency.py)."""
    window: Duration = timedelta(hours=1)               # all posts of a group fall within this span
    min_accounts: int = Field(default=3, ge=2)          # distinct accounts needed
    similarity: float = Field(default=0.5, gt=0, le=1)  # word and word-pair overlap (Jaccard) of two posts
    min_score: float = Field(default=2.5, ge=0)         # sum of account weights: young, few-follower accounts weigh 1
    young_account: Duration = timedelta(days=90)        # astroturf accounts are often aged a few weeks first
    few_followers: int = Field(default=100, ge=0)


class Transparency(Strict):
    """Cues for transparency risks. Each list given here is added to the built-in EN/FR list of the same
    name (pipeline/alerts/transparency_cues.py); `remove` drops built-in phrases that misfire for you."""
    model_config = ConfigDict(validate_default=True)
    remove: StringList = []
    disclosure_markers: StringList = []
    promotion_cues: StringList = []
    affiliate_domains: StringList = []
    link_shorteners: StringList = []
    affiliate_params: StringList = []
    affiliation_disclosures: StringList = []
    praise_cues: StringList = []
    independence_claims: StringList = []
    accusation_phrases: StringList = []
    accusation_targets: StringList = []
    accusation_words: StringList = []
    coordination: Coordination = Coordination()

    @field_validator(*transparency_cues.LISTS, mode="after")
    @classmethod
    def _add_defaults(cls, value: list[str], info: ValidationInfo) -> list[str]:
        dropped = {phrase.casefold() for phrase in info.data.get("remove", [])}
        merged = dict.fromkeys([*getattr(transparency_cues, info.field_name.upper()), *value])
        return [phrase for phrase in merged if phrase.casefold() not in dropped]


ALERT_KINDS = ("volume_spike", "negative_share", "fast_post")


class Webhook(Strict):
    """Where alerts are posted (Slack or Teams incoming webhook, or any endpoint taking JSON)."""
    name: str = Field(min_length=1)
    url: str | None = None              # or url_env: the URL holds a secret token, keep it in the environment
    url_env: str | None = None
    kinds: list[Literal[ALERT_KINDS]] = []   # empty: every kind
    timeout: Duration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _one_url(self) -> "Webhook":
        if bool(self.url) == bool(self.url_env):
            raise ValueError("give either 'url' or 'url_env' (the name of an environment variable holding the URL)")
        if self.url and not self.url.lower().startswith(("https://", "http://")):
            raise ValueError(f"'url' must start with https:// or http://, got {shown(self.url)}")
        return self

    def resolved_url(self) -> str | None:
        return self.url or os.environ.get(self.url_env or "") or None


class Alerts(Strict):
    """Crisis and spike alerts (pipeline/alerts/detection.py; the method: docs/alerts.md)."""
    enabled: bool = True
    windows: list[Duration] = [timedelta(minutes=10), timedelta(minutes=15), timedelta(hours=1),
                               timedelta(hours=6)]                                     # scanned,
    step: Duration = timedelta(minutes=5)                                                    # one ending every step
    baseline_weeks: int = Field(default=4, ge=1, le=52)   # the seasonal baseline: this many weeks before the day
    p_value: float = Field(default=1e-5, gt=0, lt=1)      # Poisson (volume) / binomial (negative share) upper tail
    min_count: int = Field(default=8, ge=1)               # mentions in a window before a volume spike counts
    min_ratio: float = Field(default=3.0, ge=1)           # … and at least this many times the expected count
    negative_min_count: int = Field(default=8, ge=1)      # negative mentions in a window
    negative_increase: float = Field(default=0.2, gt=0, le=1)   # share above the baseline share, at least
    post_min_engagement: int = Field(default=100, ge=1)   # likes + reposts + replies (+ quotes) of one post
    post_per_hour: float = Field(default=50, gt=0)        # engagement gained per hour since posting
    post_z: float = Field(default=4.0, gt=0)              # robust z-score vs the brand's other posts
    attempts: int = Field(default=3, ge=1, le=10)         # per webhook per run; failed ones retry next run
    backoff: Duration = timedelta(seconds=1)              # doubled after each failed attempt
    give_up_after: Duration = timedelta(days=1)           # stop retrying deliveries of alerts older than this
    webhooks: list[Webhook] = []

    @field_validator("windows")
    @classmethod
    def _some_windows(cls, value: list[timedelta]) -> list[timedelta]:
        if not value or any(w <= timedelta(0) for w in value):
            raise ValueError("'windows' needs at least one positive duration, such as [10m, 15m, 1h, 6h]")
        return value


PLACEHOLDERS = ("author", "brand", "case")


def template_fields(text: str) -> list[str]:
    """The {placeholders} of a reply template; malformed braces or a field other than PLACEHOLDERS raise."""
    import string

    try:
        parts = [(field, spec, conv) for _, field, spec, conv in string.Formatter().parse(text) if field is not None]
    except ValueError as exc:
        raise ValueError(f"{exc}; write {{{{ and }}}} for literal braces") from None
    allowed = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    for field, spec, conv in parts:
        if field not in PLACEHOLDERS:
            guess = difflib.get_close_matches(field, PLACEHOLDERS, n=1)
            hint = f" (did you mean {{{guess[0]}}}?)" if guess else ""
            raise ValueError(f"unknown placeholder {{{field}}}{hint}; placeholders are {allowed} "
                             f"(write {{{{ and }}}} for literal braces)")
        if spec or conv:
            raise ValueError(f"placeholder {{{field}}} takes no format or conversion; placeholders are {allowed}")
    return [field for field, _, _ in parts]


class ReplyTemplate(Strict):
    """A canned reply for the desk: for an intent, a complaint category and a language (each optional)."""
    name: str = Field(min_length=1)
    text: str = Field(min_length=1)
    intent: Literal[INTENTS] | None = None       # none: any intent
    category: str | None = None  # none: any category (complaints only have one): built-in or rules' categories
    lang: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")   # 'en', 'fr'…; none: any language

    @field_validator("text")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        template_fields(value)
        return value

    @model_validator(mode="after")
    def _category_of_complaints(self) -> "ReplyTemplate":
        if self.category and self.intent not in (None, "complaint"):
            raise ValueError(f"a 'category' is only given to complaints, but this template's intent is '{self.intent}'")
        return self


class Privacy(Strict):
    """How long mentions are kept (`ecoute prune`); erasure on request is `ecoute erase`."""
    retention_days: int | None = Field(default=None, ge=1)   # none: keep everything


class Smtp(Strict):
    """An SMTP server to send e-mail through. Credentials come from the environment, never from rules.yaml."""
    sender: str = Field(min_length=3)                # the From: address
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    username_env: str = "SMTP_USERNAME"              # variables holding the login; no login when unset
    password_env: str = "SMTP_PASSWORD"
    timeout: Duration = timedelta(seconds=30)


class DigestEmail(Smtp):
    """A digest by e-mail (SMTP)."""
    to: StringList = Field(min_length=1)


class Team(Strict):
    """Agents who work a share of the cases: those of their `languages` and `brands` (empty: any)."""
    name: str = Field(min_length=1, max_length=120)
    members: StringList = []
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = []
    brands: StringList = []
    assignment: Literal[ASSIGNMENTS] | None = None   # none: queue.assignment
    max_open_per_agent: int | None = Field(default=None, ge=1)   # none: queue.max_open_per_agent
    escalation: Escalation | None = None             # none: queue.escalation, for this team's cases


class When(Strict):
    """An automation's conditions, all of which must hold (a list: any of its values)."""
    brand: OneOrMany = []
    source: OneOrMany = []                 # a source's name in rules.yaml or its type (twitter, rss…)
    lang: OneOrMany = []
    intent: OneOrMany = []
    category: OneOrMany = []
    severity: OneOrMany = []
    sentiment: OneOrMany = []
    transparency: OneOrMany = []           # a transparency risk's kind
    min_priority: int | None = Field(default=None, ge=0, le=100)
    min_followers: int | None = Field(default=None, ge=0)
    keywords: StringList = []              # any of them in the post, as words, case-insensitively
    authors: StringList = []               # any of these handles

    @field_validator("intent")
    @classmethod
    def _known_intents(cls, value: list[str]) -> list[str]:
        return _known(value, INTENTS, "intent")

    @field_validator("severity")
    @classmethod
    def _known_severities(cls, value: list[str]) -> list[str]:
        return _known(value, SEVERITIES, "severity")

    @field_validator("sentiment")
    @classmethod
    def _known_sentiments(cls, value: list[str]) -> list[str]:
        return _known(value, SENTIMENT_CLASSES, "sentiment")

    @field_validator("transparency")
    @classmethod
    def _known_risks(cls, value: list[str]) -> list[str]:
        return _known(value, TRANSPARENCY_KINDS, "transparency kind")


def _known(values: list[str], choices: tuple[str, ...], what: str) -> list[str]:
    for value in values:
        if value not in choices:
            guess = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            raise ValueError(f"unknown {what} {value!r}{hint}; one of {', '.join(choices)}")
    return values


def _dismiss_reason(value: Any) -> Any:
    return "spam" if value is True else None if value is False else value


class Then(Strict):
    """An automation's actions."""
    assign_team: str | None = None          # a team's name: the case goes to that team
    assign: str | None = None               # a user's name
    priority: int = Field(default=0, ge=-100, le=100)   # points added to the case's priority
    tag: OneOrMany = []
    notify: StringList = []                 # webhook names (alerts.webhooks) or e-mail addresses
    template: str | None = None             # a reply template's name, suggested first on the case
    dismiss: Annotated[Literal[DISMISS_REASONS] | None, BeforeValidator(_dismiss_reason)] = None   # true: spam

    @model_validator(mode="after")
    def _does_something(self) -> "Then":
        if not (self.assign_team or self.assign or self.priority or self.tag or self.notify or self.template
                or self.dismiss):
            raise ValueError("an automation needs at least one action: assign_team, assign, priority, tag, "
                             "notify, template or dismiss")
        return self


class Automation(Strict):
    """If a new case matches `when`, do `then` (docs/desk.md, 'Automations'). Evaluated in file order."""
    name: str = Field(min_length=1, max_length=120)
    enabled: bool = True
    when: When = When()
    then: Then


class Digest(Strict):
    """`ecoute report` sent on a schedule by `ecoute digest` (docs/alerts.md, 'Digests')."""
    name: str = Field(min_length=1)
    schedule: Literal["daily", "weekly"] = "weekly"
    at: Clock = dt_time(8, 0)                        # local time, in queue.timezone
    weekday: Literal[WEEKDAYS] = "mon"               # for weekly digests
    period: Duration = timedelta(days=7)             # what the report covers, up to the sending time
    brand: str | None = None                         # one brand, or all
    format: Literal["html", "markdown"] = "html"     # the e-mail's report; webhooks get a text summary
    webhooks: list[Webhook] = []
    email: DigestEmail | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> "Digest":
        if not self.webhooks and self.email is None:
            raise ValueError(f"digest {self.name!r} goes nowhere: give 'webhooks', 'email' or both")
        return self


class Rules(Strict):
    brands: list[Brand] = Field(min_length=1)
    sources: list[Source] = []
    queue: Queue = Queue()
    goals: list[Goal] = []
    models: Models = Models()
    transparency: Transparency = Transparency()
    alerts: Alerts = Alerts()
    templates: list[ReplyTemplate] = []
    privacy: Privacy = Privacy()
    digests: list[Digest] = []
    categories: list[Category] = []      # the brand's complaint categories (empty: the built-in list)
    teams: list[Team] = []
    automations: list[Automation] = []
    smtp: Smtp | None = None             # for notifications to e-mail addresses (automations, escalation)

    @model_validator(mode="after")
    def _unique_names(self) -> "Rules":
        for kind, items in (("brand", self.brands), ("source", self.sources), ("digest", self.digests),
                            ("team", self.teams), ("automation", self.automations),
                            ("category", self.categories),
                            *((f"brand {b.name!r} category", b.categories) for b in self.brands if b.categories)):
            names = [item.name for item in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind} names must be unique, repeated: {', '.join(dupes)}")
        named = [(t.name, t.lang) for t in self.templates]
        dupes = sorted({f"{n} ({lang or 'any language'})" for n, lang in named if named.count((n, lang)) > 1})
        if dupes:
            raise ValueError(f"template names must be unique per language, repeated: {', '.join(dupes)}")
        return self

    def brand(self, name: str) -> Brand:
        return next(b for b in self.brands if b.name == name)

    def categories_for(self, brand: str | None) -> list[Category]:
        """The categories a complaint about `brand` is sorted into: the brand's own, else the shared ones
        (empty: the built-in list)."""
        own = next((b.categories for b in self.brands if b.name == brand), None)
        return list(own if own is not None else self.categories)

    def category_names(self) -> tuple[str, ...]:
        """Every category a complaint can get under these rules, over all brands."""
        names = [c.name for b in self.brands for c in (self.categories_for(b.name) or ())]
        if names:   # what a complaint that fits none of a brand's own categories gets (pipeline/models/categories.py)
            names.append("other")
        if any(not self.categories_for(b.name) for b in self.brands):
            names += CATEGORIES
        return tuple(dict.fromkeys(names))

    def team(self, name: str) -> Team:
        return next(t for t in self.teams if t.name == name)


class RulesError(Exception):
    """rules.yaml is unreadable or invalid; `problems` holds one located message per mistake."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def rules_path(path: str | os.PathLike | None = None) -> Path:
    return Path(path or os.environ.get("ECOUTE_RULES") or DEFAULT_RULES)


def load_rules(path: str | os.PathLike | None = None) -> Rules:
    """Read and validate rules.yaml (default: $ECOUTE_RULES, else ./rules.yaml)."""
    file = rules_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(str(file), [f"{file}: cannot read rules: {exc.strerror}"]) from None
    return parse_rules(text, str(file))


def parse_rules(text: str, filename: str = DEFAULT_RULES) -> Rules:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_aliases(node, filename)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        raise RulesError(filename, [f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(data, dict):
        raise RulesError(filename, [f"{filename}:1: expected a mapping with 'brands', got {type(data).__name__}"])
    try:
        rules = Rules.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(error, node, filename) for error in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"{filename}: … and {len(errors) - MAX_PROBLEMS:,} more problems")
        raise RulesError(filename, problems) from None
    problems = [f"{filename}:{_line_of(node, loc)} {_format_path(loc)}: {message}"
                for loc, message in unknown_names(rules)]
    if problems:
        raise RulesError(filename, problems[:MAX_PROBLEMS])
    return rules


def unknown_names(rules: Rules) -> list[tuple[list, str]]:
    """Names that point at nothing: a team, webhook, template, brand or category named in an automation, a
    team, the escalation or a template that the rules do not define; (location, message) each."""
    webhooks = [w.name for w in rules.alerts.webhooks]
    teams = [t.name for t in rules.teams]
    brands = [b.name for b in rules.brands]
    categories = rules.category_names()
    out: list[tuple[list, str]] = []

    def check(loc: list, value: str, known, what: str, where: str) -> None:
        if value not in known:
            guess = difflib.get_close_matches(value, list(known), n=1)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            listed = ", ".join(known) if known else "none"
            out.append((loc, f"unknown {what} {value!r}{hint}; {where}: {listed}"))

    def targets(loc: list, values: list[str]) -> None:
        for j, value in enumerate(values):
            if "@" in value:
                if rules.smtp is None:
                    out.append(([*loc, j], f"{value!r} is an e-mail address, but there is no 'smtp' section to "
                                           f"send it through"))
            else:
                check([*loc, j], value, webhooks, "webhook", "webhooks defined under alerts.webhooks")

    for i, team in enumerate(rules.teams):
        for j, brand in enumerate(team.brands):
            check(["teams", i, "brands", j], brand, brands, "brand", "brands")
        if team.escalation:
            for stage in ("due_soon", "breached"):
                targets(["teams", i, "escalation", stage], getattr(team.escalation, stage))
    for stage in ("due_soon", "breached"):
        targets(["queue", "escalation", stage], getattr(rules.queue.escalation, stage))
    for i, auto in enumerate(rules.automations):
        for j, brand in enumerate(auto.when.brand):
            check(["automations", i, "when", "brand", j], brand, brands, "brand", "brands")
        for j, category in enumerate(auto.when.category):
            check(["automations", i, "when", "category", j], category, categories, "category", "categories")
        if auto.then.assign_team:
            check(["automations", i, "then", "assign_team"], auto.then.assign_team, teams, "team", "teams")
        if auto.then.template:
            check(["automations", i, "then", "template"], auto.then.template,
                  list(dict.fromkeys(t.name for t in rules.templates)), "template", "templates")
        targets(["automations", i, "then", "notify"], auto.then.notify)
    for i, template in enumerate(rules.templates):
        if template.category:
            check(["templates", i, "category"], template.category, categories, "category", "categories")
    return out


def _check_aliases(root: yaml.Node | None, filename: str) -> None:
    """Refuse a document whose aliases expand past MAX_YAML_VALUES values, or refer to themselves, naming
    the line of the smallest part that is already too large. Counted on the composed nodes, where an alias
    is the anchored node itself: each node is counted once, however often it is repeated."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, open_nodes: set[int]) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise RulesError(filename, [f"{filename}:{node.start_mark.line + 1}: an alias refers to the value "
                                        f"that contains it"])
        open_nodes.add(id(node))
        children = ([part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        sizes[id(node)] = 1 + sum(size(child, open_nodes) for child in children)
        open_nodes.discard(id(node))
        return sizes[id(node)]

    if root is None or size(root, set()) <= MAX_YAML_VALUES:
        return
    node = root
    while True:   # down to the smallest part over the limit: where the aliases multiply
        children = ([part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        larger = next((child for child in children if sizes[id(child)] > MAX_YAML_VALUES), None)
        if larger is None:
            break
        node = larger
    raise RulesError(filename, [f"{filename}:{node.start_mark.line + 1}: aliases expand to {sizes[id(root)]:,} "
                                f"values, more than the {MAX_YAML_VALUES:,} a rules file may hold; write the "
                                f"values out instead of repeating anchors"])


def _describe(error: dict[str, Any], root: yaml.Node, filename: str) -> str:
    loc = [part for part in error["loc"] if not _is_internal(part)]
    line = _line_of(root, loc)
    field = _format_path(loc)
    if error["type"] == "extra_forbidden":
        parent_model = _model_at(loc[:-1])
        choices = sorted(parent_model.model_fields) if parent_model else []
        guess = difflib.get_close_matches(str(loc[-1]), choices, n=1)
        hint = f" (did you mean '{guess[0]}'?)" if guess else ""
        message = f"unknown field{hint}; valid fields: {', '.join(choices)}"
    elif error["type"] == "missing":
        message = "required field is missing"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if "input" in error and error["type"] not in ("value_error",) and "got" not in message:
            message += f", got {shown(error['input'])}"
    return f"{filename}:{line} {field}: {message}"


def _is_internal(part: Any) -> bool:
    # pydantic adds validator names such as 'function-before[...]' to a location
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _format_path(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int:
    line = node.start_mark.line + 1 if node is not None else 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                return line
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    model: Any = Rules
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return None
    return model
