"""Deterministic stand-in for Jarvis Moderator: a verdict from the content alone, with reasons.

Prices are the docs' Jarvis table (``akool_flows.api.pricing``), charged by
``akool_flows.sandbox.kinds.pricing.moderation_price`` on what :mod:`akool_flows.sandbox.media`
measures: text length (``chars=N`` in a text URL's query), media duration (``duration=SECONDS``),
else a stable hash of the URL.

Verdicts: content that cannot be analysed (empty, garbled, an unfetchable or unsupported URL) is
``Unknown``. Otherwise the text is read against a rule set of phrases, not single words, so a
demo reads right: a threat ("I will come to your office with a knife", "I know where you live"),
an insult aimed at a person, hate towards a group, profanity, self-harm, sexual content or spam
is ``Non-Compliant``; everyday idioms that contain alarming words ("shut up and take my money",
"this camera is killing it", "I hate waiting on hold", "shoot me an email") are taken out first
and stay ``Compliant``. Words of the user's ``input`` are flagged as ``customized``. For URLs the
decision is made from the URL text, since the sandbox fetches nothing. The rules are checked
against a labelled list of comments in the test suite (tests/notebook/moderation_labels.csv).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# media_duration_seconds is re-exported: older callers import it from here.
from akool_flows.sandbox.media import is_url, media_duration_seconds, url_ext

__all__ = ["MODERATION_TYPES", "Verdict", "classify", "media_duration_seconds"]

MODERATION_TYPES: dict[int, str] = {1: "image", 2: "video", 3: "audio", 4: "text"}

# Formats the docs say Jarvis accepts, per content type (by URL path extension).
SUPPORTED_EXTENSIONS: dict[int, frozenset[str]] = {
    1: frozenset({"png", "jpeg", "jpg", "webp", "gif"}),
    2: frozenset({"mp4", "avi"}),
    3: frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"}),
    4: frozenset({"txt", "docx", "xml", "pdf", "csv", "md", "json"}),
}

# URL text that stands for "the moderator could not fetch this".
_UNFETCHABLE_RE = re.compile(r"unfetchable|not[-_]?found|\b404\b|expired|sandbox-unknown", re.IGNORECASE)

# Idioms that contain alarming words but mean no harm: removed before the rules are read.
_IDIOMS = (
    r"shut up and take my money", r"kill(?:ing|s|ed)? it", r"killer (?:app|feature|deal|price|camera|battery|combo|"
    r"sound|design|look)s?", r"kill(?:ing)? (?:time|the lights)", r"(?:to die|dying) for", r"dying to (?:try|see|get)",
    r"drop[- ]dead gorgeous", r"(?:the|da) bomb(?:\.com)?", r"bomb(?:ed)? (?:at|in) the box office", r"photo ?shoot",
    r"shoot (?:me|us) (?:an?|the) (?:email|message|note|dm|line|text)", r"shooting (?:photos|video|pictures)",
    r"blew (?:me|my mind) away", r"blown away", r"beat(?:s)? (?:the|my|any|every) (?:price|record|competition|"
    r"deadline|heat|traffic|rush)", r"hate (?:to say|it when|waiting|queues|the wait|that)", r"i could kill for",
    r"knock(?:ed|s)? (?:it )?out of the park", r"cut(?:ting)? (?:prices|costs|the cord)", r"(?:a |the )?knife set",
    r"bread knife", r"(?:gun )?metal (?:grey|gray)", r"glue gun", r"attack on titan", r"heart attack of a price",
    r"killing (?:my|the) battery", r"crazy good", r"insanely (?:good|fast)", r"sick (?:beat|track|moves)",
)
_IDIOM_RE = re.compile(r"\b(?:" + "|".join(_IDIOMS) + r")\b")

_ME = r"(?:i|we|i'll|we'll|i'm|we're|im)"
_WILL = r"(?:will|'ll|am going to|are going to|'m going to|'re gonna|gonna|'m gonna|shall|want to|wanna|am gonna)"
_WEAPON = r"(?:knife|knives|gun|guns|rifle|pistol|machete|axe|bat|bomb|bombs|acid|crowbar|hammer)"
_HARM = (r"(?:kill|murder|shoot|stab|hurt|beat (?:you|him|her|them|the)|burn (?:you|your|down)|strangle|choke|"
         r"punch|attack|destroy you|break your|slit|behead|torture|smash your)")
_TARGET = r"(?:you|your|ur|u|him|her|them|everyone|every one|the staff|the manager|the ceo|your (?:family|kids|office|house|store|shop))"
_GROUPS = (r"(?:women|men|girls|immigrants|refugees|foreigners|muslims|jews|christians|hindus|atheists|gays|lesbians|"
           r"trans people|black people|white people|asians|mexicans|arabs|africans|disabled people|old people)")
_INSULTS = (r"(?:idiots?|stupid|morons?|losers?|worthless|pathetic|dumb|ugly|scum|imbeciles?|clowns?|useless|"
            r"incompetent|brainless|garbage|trash|fools?|jerks?|retards?|creeps?|parasites?)")

# (category, description, pattern). Read in order; each category reports what it found.
_RULES: tuple[tuple[str, str, str], ...] = (
    ("violence", "A threat of physical harm, or graphic violence",
     rf"\b{_ME} ?{_WILL}? ?(?:come|go|be) (?:to|at|over to|round to|after) {_TARGET}\b[^.!?]*\b(?:with|and) (?:an? |my |the )?(?:{_WEAPON}|{_HARM})"
     rf"|\b{_ME} ?{_WILL} ?{_HARM}\b|\b{_HARM} (?:you|u|ur|him|her|them|everyone|all of you)\b(?! (?:know|need|want))"
     rf"|\bi know where (?:you|u) live\b|\bwatch your back\b|\byou(?:'re| are| will be) (?:dead|going to die|gonna die)\b"
     rf"|\b(?:bring|bringing|got|have|grab) (?:an? |my |the )?{_WEAPON}\b[^.!?]*\b(?:you|your|office|store|school|shop)\b"
     rf"|\b(?:bomb|shoot up|burn down) (?:the|your|this) (?:office|store|school|shop|place|building|company)\b"
     rf"|\bdeserve(?:s)? to (?:die|be shot|be hurt)\b|\bsomeone should (?:kill|shoot|hurt|beat)\b"
     rf"|\b(?:gun violence|gore|beheadings?|massacres?|bloodbath|terrorism|terrorist attacks?|shooting spree|"
     rf"mass shooting|torture videos?)\b"),
    ("cyberbullying", "Insulting or demeaning a person",
     rf"\b(?:you|u|ur|you're|youre|you are|you people are|you guys are|you all are|they are|they're|"
     rf"(?:your|the|this|that) (?:staff|team|support|support team|agents?|guy|girl|man|woman|manager|driver|"
     rf"delivery guy|seller|owner|ceo|rep) (?:is|are|was|were)|what an?|such an?|bunch of) "
     rf"(?:(?:an?|all|total|complete|absolute|so|such|real|bloody|useless|ugly|stupid|lazy|little) ){{0,3}}{_INSULTS}\b"
     rf"|\bshut (?:up|your mouth)\b|\bnobody (?:likes|asked|cares about) you\b|\bgo away,? (?:loser|idiot)\b"
     rf"|\b(?:get lost|piss off|drop dead)\b|\bkill yourself\b|\bkys\b"),
    ("hate", "Hateful language towards people or groups",
     rf"\b(?:i |we )?(?:hate|despise|can't stand) (?:all )?{_GROUPS}\b|\b{_GROUPS} (?:are|r) (?:all )?(?:animals|vermin|"
     rf"subhuman|inferior|disgusting|trash|a disease)\b|\bgo back to (?:your|where you) (?:own )?(?:country|came from)\b"
     rf"|\b(?:subhuman|vermin|inferior race|exterminate (?:them|all)|ethnic cleansing|master race)\b"
     rf"|\bhate (?:you|u|them|all of you|this company and everyone)\b"),
    ("profanity", "Profane or vulgar language",
     r"\b(?:fuck\w*|f\*+k\w*|shit\w*|sh\*t\w*|bastards?|assholes?|a\*+hole|bitch\w*|crap\w*|dickhead|wtf|bullshit|"
     r"damn you|screw you|piece of (?:shit|crap|junk))\b"),
    ("self-harm", "Self-harm or suicide",
     r"\b(?:kill myself|end my life|want to die|wanna die|suicide|cut myself|hurt myself|no reason to live)\b"),
    ("sexual", "Sexual or explicit content",
     r"\b(?:send nudes|nudes|porn\w*|xxx|nsfw|sexy pics|onlyfans|hook ?up tonight|sex chat)\b"),
    ("spam", "Spam, scams or unsolicited promotion",
     r"\b(?:click (?:here|this link|the link) (?:to|and)|free money|crypto giveaway|double your (?:money|bitcoin|crypto)|"
     r"earn \$?\d[\d,]* (?:a|per) (?:day|week|hour)|work from home and earn|dm me for|whatsapp me|"
     r"limited offer,? act now|buy followers|visit my (?:profile|page|channel)|bit\.ly/|guaranteed returns)"),
)
_RULE_RES = tuple((name, description, re.compile(pattern)) for name, description, pattern in _RULES)
# What an image, video or audio shows (the sandbox reads it from the URL's words): a weapon in a
# picture is flagged even without a threat around it.
_MEDIA_RES = (("weapons", "Weapons shown", re.compile(rf"\b(?:{_WEAPON}|firearms?|ammo|ammunition|weapons?)\b")),)


@dataclass(frozen=True)
class Verdict:
    """What the status payload reports: ``final_conclusion`` and the readable ``result``."""

    final_conclusion: str  # "Compliant" | "Non-Compliant" | "Unknown"
    result: str


def _garbled(text: str) -> bool:
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return True
    if "\ufffd" in text:  # replacement characters: the text was decoded with the wrong charset
        return True
    letters = sum(1 for c in visible if c.isalpha())
    return letters == 0 or letters / len(visible) < 0.5


def _unknown(reason: str) -> Verdict:
    return Verdict("Unknown", f"- unknown: {reason}\nResult: Unknown")


def _normalise(text: str) -> str:
    text = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text)


def findings(text: str, user_input: str | None = None, media: bool = False) -> list[str]:
    """The reasons `text` breaks the rules (empty: none), one readable line each; `media`: the
    text is what an image, video or audio shows."""
    norm = _IDIOM_RE.sub(" ", _normalise(text))
    found: list[str] = []
    for name, description, pattern in _RULE_RES + (_MEDIA_RES if media else ()):
        hits: list[str] = []
        for m in pattern.finditer(norm):
            hit = m.group(0).strip()
            if hit not in hits:
                hits.append(hit)
        if hits:
            quoted = ", ".join(f'"{h}"' for h in hits[:3])
            found.append(f"- {name}: {description} ({quoted}).")
    if user_input:
        words = {w.lower() for w in re.findall(r"\w{3,}", user_input)}
        hits = sorted(w for w in words if re.search(r"\b" + re.escape(w) + r"\b", norm))
        if hits:
            quoted = ", ".join(f'"{h}"' for h in hits)
            found.append(f"- customized: Matches the user-defined content ({quoted}).")
    return found


def classify(type_: int, content: str, user_input: str | None = None) -> Verdict:
    """The sandbox's deterministic moderation verdict for ``content`` of Jarvis ``type_``."""
    stripped = content.strip()
    if not stripped:
        return _unknown("The content is empty; there is nothing to analyse.")
    if is_url(stripped):
        if _UNFETCHABLE_RE.search(stripped):
            return _unknown("The content URL could not be fetched.")
        ext = url_ext(stripped)
        if ext and ext not in SUPPORTED_EXTENSIONS[type_]:
            allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS[type_]))
            return _unknown(f"Unsupported {MODERATION_TYPES[type_]} format '.{ext}' (supported: {allowed}).")
        # Judge the URL by its words: path segments and query, separators turned to spaces.
        text = re.sub(r"[/_\-.?=&+%]+", " ", unquote(urlsplit(stripped).path + " " + urlsplit(stripped).query))
        media = type_ != 4
    else:
        if _garbled(stripped):
            return _unknown("The text is garbled or has no readable words.")
        text = stripped
        media = False
    found = findings(text, user_input, media)
    if found:
        return Verdict("Non-Compliant", "\n".join(found) + "\nResult: Non-Compliant")
    return Verdict("Compliant", "- No policy violations detected.\nResult: Compliant")
