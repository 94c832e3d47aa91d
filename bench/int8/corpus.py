"""A varied, deterministic corpus for judging int8 quality as a search user would.

bench/corpus.py's grammar is built for speed runs: one topic, a few hundred
words, so many sentences are near-duplicates and a query's ten nearest
neighbours are often ties that any rounding reorders. Here a seeded grammar
draws from a dozen unrelated topics, each with its own subjects, actions,
objects and settings, plus shared modifiers, names and numbers. Sentences on
one topic are related without being interchangeable, so the fp32 neighbour
lists have real structure that int8 either keeps or loses.

Queries come from the same topics but are short and phrased differently (a
question or a fragment), as a user types them. Nothing is downloaded: the same
seed gives the same texts on every machine.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# topic: (roles, actions, adjectives, nouns, places)
TOPICS: dict[str, tuple[tuple[str, ...], ...]] = {
    "cooking": (
        ("chef", "baker", "line cook", "food critic", "grandmother", "caterer", "pastry student"),
        ("simmers", "roasts", "seasons", "kneads", "tastes", "chops", "ferments", "grills", "bakes"),
        ("spicy", "crispy", "homemade", "smoked", "sweet", "bitter", "creamy", "seasonal"),
        ("lentil soup", "sourdough loaf", "basil pesto", "root vegetables", "tomato sauce", "curry",
         "chocolate cake", "noodles", "salmon fillet", "dumplings", "risotto", "apple pie"),
        ("in a cast iron pan", "for the wedding dinner", "in the restaurant kitchen", "over an open fire",
         "at the night market", "before the guests arrive"),
    ),
    "football": (
        ("striker", "goalkeeper", "captain", "midfielder", "coach", "referee", "winger"),
        ("scores", "saves", "misses", "passes", "blocks", "celebrates", "heads", "shoots"),
        ("late", "brilliant", "controversial", "long", "curling", "deflected", "quick", "decisive"),
        ("penalty", "free kick", "header", "counter attack", "corner", "volley", "goal", "tackle",
         "offside call", "through ball", "equaliser", "red card"),
        ("in the cup final", "at a packed stadium", "during the derby", "in extra time",
         "on a muddy pitch", "in the qualifying round"),
    ),
    "finance": (
        ("central bank", "index fund", "startup founder", "retail investor", "treasurer", "auditor",
         "hedge fund"),
        ("raises", "cuts", "hedges", "borrows", "reports", "buys", "sells", "audits", "forecasts"),
        ("quarterly", "volatile", "long term", "risky", "foreign", "corporate", "cautious", "record"),
        ("interest rates", "earnings", "bonds", "pension savings", "loan", "currency exposure",
         "share price", "dividend", "budget deficit", "mortgage", "stock options", "tax bill"),
        ("amid rising inflation", "after the market closed", "despite weak demand", "on wall street",
         "for the next fiscal year", "during the recession"),
    ),
    "medicine": (
        ("nurse", "cardiologist", "patient", "family doctor", "surgeon", "pharmacist", "paramedic"),
        ("diagnoses", "treats", "monitors", "prescribes", "operates on", "examines", "vaccinates"),
        ("chronic", "mild", "severe", "rare", "infected", "painful", "sudden", "seasonal"),
        ("broken wrist", "blood pressure", "flu", "knee injury", "back pain", "allergic reaction",
         "migraine", "fever", "diabetes", "asthma attack", "heart rhythm", "skin rash"),
        ("in the emergency room", "after a night shift", "at the rural clinic", "in intensive care",
         "during the home visit", "within two weeks"),
    ),
    "travel": (
        ("backpacker", "tour guide", "pilot", "travel blogger", "group of students", "ferry captain",
         "hotel receptionist"),
        ("books", "explores", "misses", "photographs", "hikes to", "sails to", "visits", "cancels"),
        ("cheap", "crowded", "remote", "historic", "overnight", "scenic", "delayed", "volcanic"),
        ("train to the coast", "harbour", "mountain village", "museum", "flight", "island", "hostel",
         "castle", "desert road trip", "canal cruise", "border crossing", "ski resort"),
        ("during the summer holidays", "without a map", "at sunrise", "on a tight budget",
         "with a rental car", "across three countries"),
    ),
    "programming": (
        ("compiler", "junior developer", "test suite", "build server", "linter", "database admin",
         "security team"),
        ("refactors", "compiles", "debugs", "rejects", "deploys", "profiles", "patches", "reviews"),
        ("flaky", "legacy", "concurrent", "slow", "broken", "unsafe", "generated", "minified"),
        ("memory leak", "database migration", "race condition", "module", "unit test", "json parser",
         "api endpoint", "docker image", "sql query", "merge request", "cache layer", "login page"),
        ("before the release", "late on friday", "in the staging environment", "after the code review",
         "on the production cluster", "in continuous integration"),
    ),
    "weather": (
        ("storm", "cold front", "forecaster", "heavy fog", "heat wave", "hurricane", "blizzard"),
        ("floods", "reaches", "delays", "covers", "threatens", "batters", "freezes", "dries out"),
        ("coastal", "northern", "low lying", "mountain", "southern", "rural", "exposed", "flooded"),
        ("towns", "valleys", "morning flights", "vineyards", "city centre", "farmland", "highways",
         "harbours", "ski slopes", "rivers", "power lines", "wheat fields"),
        ("by tomorrow night", "for the third day", "earlier than expected", "with strong gusts",
         "despite the warnings", "all weekend"),
    ),
    "music": (
        ("pianist", "jazz trio", "orchestra", "drummer", "folk singer", "violinist", "conductor"),
        ("rehearses", "records", "improvises", "performs", "composes", "tunes", "remixes", "sings"),
        ("slow", "acoustic", "experimental", "classical", "upbeat", "melancholic", "live", "forgotten"),
        ("ballad", "symphony", "blues standard", "album", "duet", "opening chords", "concerto",
         "lullaby", "guitar solo", "choir piece", "film score", "drum pattern"),
        ("in a small club", "at the summer festival", "for a sold out crowd", "in the recording studio",
         "on the radio", "in an empty church"),
    ),
    "gardening": (
        ("gardener", "uncle", "volunteer", "florist", "beekeeper", "allotment holder", "landscaper"),
        ("plants", "prunes", "waters", "harvests", "composts", "repots", "fertilises", "weeds"),
        ("young", "overgrown", "organic", "wilting", "potted", "climbing", "hardy", "flowering"),
        ("apple trees", "tulips", "tomato seedlings", "hedge", "herbs", "potatoes", "roses",
         "strawberries", "lawn", "pumpkins", "lavender", "vegetable beds"),
        ("in early spring", "after the frost", "every other evening", "in raised beds",
         "in the greenhouse", "on the balcony"),
    ),
    "astronomy": (
        ("telescope", "amateur astronomer", "space agency", "rover", "research team", "satellite",
         "astronaut"),
        ("observes", "launches", "maps", "detects", "lands on", "photographs", "measures", "orbits"),
        ("distant", "faint", "icy", "rocky", "massive", "young", "dying", "habitable"),
        ("galaxy", "rings of saturn", "comet", "surface of mars", "exoplanet", "lunar pole", "nebula",
         "black hole", "asteroid", "supernova", "solar flare", "star cluster"),
        ("on a clear night", "after years of planning", "with infrared cameras", "from orbit",
         "during the eclipse", "from the observatory"),
    ),
    "education": (
        ("teacher", "shy student", "principal", "tutor", "exam board", "librarian", "professor"),
        ("explains", "grades", "revises", "memorises", "questions", "presents", "assigns", "reads"),
        ("difficult", "short", "final", "optional", "weekly", "detailed", "group", "oral"),
        ("algebra homework", "history essay", "chemistry experiment", "reading list", "fractions",
         "exam", "poem", "spelling test", "thesis", "lab report", "geography quiz", "lecture"),
        ("before the holidays", "in the school library", "during the morning lesson", "with great patience",
         "in the lecture hall", "after class"),
    ),
    "housing": (
        ("landlord", "young couple", "architect", "city council", "plumber", "estate agent",
         "electrician"),
        ("renovates", "rents out", "inspects", "repairs", "sells", "designs", "insulates", "paints"),
        ("small", "leaking", "old", "shared", "new", "broken", "draughty", "affordable"),
        ("flat near the station", "roof", "farmhouse", "kitchen", "apartment block", "boiler",
         "attic", "garden shed", "bathroom", "staircase", "basement", "windows"),
        ("before winter", "for a fair price", "despite the paperwork", "over the long weekend",
         "in the old town", "on the top floor"),
    ),
}  # fmt: skip

MODIFIERS = (
    "quickly", "carefully", "once again", "for the first time", "surprisingly", "as usual",
    "reluctantly", "with some help", "proudly", "at last", "almost by accident", "without complaint",
)  # fmt: skip
CONNECTORS = ("and then", "while", "because", "although", "so", "but")
NAMES = ("Ana", "Tomasz", "Keiko", "Ravi", "Lena", "Omar", "Zoe", "Mateo", "Ingrid", "Kwame")
QUESTIONS = (
    "how does the {s} {a} a {o}", "why would a {s} {a} the {o}", "{o} {t}",
    "what happens when the {s} cannot {a} the {o}", "{s} and the {o}", "best way to {a} a {o} {t}",
)  # fmt: skip


def _clause(rng: random.Random, topic: str) -> str:
    """One clause: who (a role, sometimes named) does what to which thing, where or when."""
    roles, actions, adjectives, nouns, places = TOPICS[topic]
    who = f"the {rng.choice(roles)}"
    if rng.random() < 0.25:
        who = f"{rng.choice(NAMES)} the {rng.choice(roles)}"
    parts = [who, rng.choice(actions), rng.choice(("the", "a", "that", "every")), rng.choice(nouns)]
    if rng.random() < 0.6:
        parts.insert(3, rng.choice(adjectives))
    if rng.random() < 0.4:
        parts.insert(1, rng.choice(MODIFIERS))
    if rng.random() < 0.5:
        parts.append(rng.choice(places))
    return " ".join(parts)


def make_varied_corpus(
    count: int, count_tokens: Callable[[str], int], *, seed: int = 20261129,
    min_tokens: int = 10, max_tokens: int = 64,
) -> list[str]:  # fmt: skip
    """``count`` distinct sentences of ``min_tokens``..``max_tokens`` tokens over every topic."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < count:
        topic = rng.choice(topics)
        target = rng.randint(min_tokens, max_tokens)
        text = _clause(rng, topic)
        while count_tokens(text + ".") < target:
            # Mostly the same topic, sometimes another: neighbours share a
            # topic but not every word.
            other = topic if rng.random() < 0.8 else rng.choice(topics)
            text += f" {rng.choice(CONNECTORS)} {_clause(rng, other)}"
            if rng.random() < 0.2:
                text += f" {rng.randint(2, 90)} times"
        text = text[0].upper() + text[1:] + "."
        if text not in seen and min_tokens <= count_tokens(text) <= max_tokens:
            seen.add(text)
            texts.append(text)
    return texts


def make_queries(count: int, *, seed: int = 20261130) -> list[str]:
    """``count`` distinct short queries, as a user would type them, over every topic."""
    rng = random.Random(seed)
    topics = sorted(TOPICS)
    seen: set[str] = set()
    queries: list[str] = []
    while len(queries) < count:
        roles, actions, adjectives, nouns, places = TOPICS[rng.choice(topics)]
        query = rng.choice(QUESTIONS).format(
            s=rng.choice(roles), a=rng.choice(actions).split()[0].removesuffix("s"),
            o=f"{rng.choice(adjectives)} {rng.choice(nouns)}", t=rng.choice(places),
        )  # fmt: skip
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries
