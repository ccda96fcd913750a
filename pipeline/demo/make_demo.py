"""Write the bundled demo set, `pipeline/demo/mentions.jsonl`: realistic mentions of two fictional brands.

    python -m pipeline.demo.make_demo          # rewrites mentions.jsonl beside this file

Deterministic (one seeded `random.Random`), so the shipped file can always be regenerated and
reviewed as a diff. Aerolia is an airline, Lumelle a French skincare brand; both appear in the
example `rules.yaml`. The set spans six weeks in English and French across Twitter/X, Reddit,
RSS (news and blogs), Mastodon and Bluesky, and holds what a listening team meets every day:
complaints, questions, praise, neutral news, competitor talk, look-alike names (the "Aerolia Park"
and the band "Lumelle") that must not count, the brands' own accounts, an ambassador's disclosed
and undisclosed promotion, an "independent" review blog on a brand-owned domain, a coordinated
burst of copy-paste posts, public accusations of deception, and one crisis day (an Aerolia
check-in outage). Each line's `raw.demo` names the kind of post it was written as, for checks.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

OUT = Path(__file__).parent / "mentions.jsonl"
START = datetime(2026, 10, 5, tzinfo=timezone.utc)
DAYS = 43                      # 2026-10-05 .. 2026-11-16
CRISIS_DAY = datetime(2026, 11, 10, tzinfo=timezone.utc)

FIRST = ["julie", "marco", "sam", "nadia", "tom", "lea", "hugo", "emma", "lucas", "chloe", "amir", "sofia",
         "ben", "ines", "paul", "zoe", "yann", "claire", "omar", "lisa", "theo", "manon", "raj", "alice",
         "kevin", "camille", "jonas", "elodie", "mehdi", "sarah", "noah", "anais", "victor", "laura"]
LAST = ["_travels", "_b", "92", "_dev", "_m", "photo", "_nyc", "_lyon", "_paris", "_mtl", "_uk", "1987",
        "_writes", "_k", "_runs", "_skin", "_beauty", "_reads", "_on_tour", "_", "_fr", "_qc"]

# --- Aerolia, the airline -------------------------------------------------------------------------
AE_ROUTES = ["Paris to Montreal", "Lyon to London", "Nice to Dublin", "Paris to Lisbon", "Montreal to Toronto",
             "Bordeaux to Madrid", "Paris to New York", "Marseille to Rome"]
AE_FR_ROUTES = ["Paris-Montréal", "Lyon-Londres", "Nice-Dublin", "Paris-Lisbonne", "Montréal-Toronto",
                "Bordeaux-Madrid", "Marseille-Rome", "Toulouse-Bruxelles"]
AE_COMPLAINTS_EN = [
    "@aerolia my flight {route} has been delayed 5 hours and nobody at the gate can tell us why. Unacceptable.",
    "Lost my bag on Aerolia {route}. Three days, four calls, zero answers. #aerolia",
    "@aerolia_help I was charged twice for seat selection on booking {ref}. Still waiting for the refund after 3 weeks.",
    "Aerolia cancelled my {route} flight the night before and the rebooking is 2 days later. Thanks for nothing.",
    "Worst customer service ever. Aerolia hung up on me after 50 minutes on hold.",
    "@aerolia the app crashed during check-in and now I'm told I have to pay 45 euros at the desk?? Seriously?",
    "Broken seat, no water, rude crew. Aerolia {route} was a disaster today.",
    "@aerolia my wheelchair assistance never showed up at the gate. My mother waited 2 hours. This is not ok.",
    "Aerolia refund for my cancelled flight promised in 7 days, it's been 2 months. Booking {ref}. #aerolia",
    "Missed my connection because @aerolia was late and they refuse to pay for the hotel. Disgusting.",
    "My suitcase came back from Aerolia with a broken handle and a torn side. Claim {ref} ignored.",
    "@aerolia_help your chat bot keeps looping me back to the start. I just want to change a date!",
]
AE_COMPLAINTS_FR = [
    "@aerolia vol {route} retardé de 4 heures, aucune information, aucun repas. Inadmissible.",
    "Aérolia a perdu ma valise sur le {route}. Trois jours sans nouvelles. #aerolia",
    "@aerolia_help j'attends toujours mon remboursement pour le vol annulé, dossier {ref}. Deux mois !",
    "Vol annulé la veille par Aerolia et on me propose un départ dans 3 jours. Merci pour rien.",
    "Service client Aerolia injoignable, 1 heure d'attente puis ça raccroche. Honteux.",
    "@aerolia l'appli plante à l'enregistrement et on me fait payer 45 € au comptoir ?! Scandaleux.",
    "Siège cassé, personnel désagréable, pas d'eau. Le {route} avec Aérolia, plus jamais.",
    "Correspondance ratée à cause du retard d'@aerolia et ils refusent de payer l'hôtel. Honteux.",
    "Ma valise est revenue déchirée après un vol Aerolia. Réclamation {ref} sans réponse.",
    "@aerolia_help votre chatbot tourne en rond, impossible de modifier ma date de retour.",
]
AE_QUESTIONS_EN = [
    "@aerolia can I bring a guitar as cabin baggage on the {route} flight?",
    "Does anyone know if Aerolia lets you change the name on a ticket?",
    "@aerolia_help how do I add a checked bag to booking {ref}?",
    "Is the Aerolia lounge in Paris open before 6am?",
    "@aerolia what's the pet policy for small dogs in the cabin?",
    "How early should I get to the airport for an Aerolia international flight?",
]
AE_QUESTIONS_FR = [
    "@aerolia est-ce que je peux prendre une poussette en cabine sur le {route} ?",
    "Quelqu'un sait si Aérolia rembourse les taxes d'un billet non utilisé ?",
    "@aerolia_help comment ajouter un bagage en soute à ma réservation {ref} ?",
    "Le salon Aerolia à Montréal est ouvert à quelle heure ?",
    "Aerolia accepte les animaux en cabine sur les vols vers Londres ?",
]
AE_PRAISE_EN = [
    "Shout out to the Aerolia crew on {route} today, so kind to my kids. Best flight in years!",
    "Aerolia upgraded me for my birthday. Made my day! #aerolia",
    "Smooth flight, on time, great coffee. Well done @aerolia.",
    "The @aerolia_help team sorted my rebooking in 5 minutes. Impressed.",
    "Love the new Aerolia app, check-in in 30 seconds.",
]
AE_PRAISE_FR = [
    "Merci à l'équipage Aerolia du {route}, adorables avec les enfants. Super vol !",
    "Vol à l'heure, personnel souriant, bravo @aerolia.",
    "Le service client @aerolia_help a réglé mon problème en 5 minutes. Chapeau.",
    "Aérolia m'a surclassé pour mon anniversaire, trop gentil !",
]
AE_NEUTRAL_EN = [
    "Aerolia announces a new {route} route starting in the spring.",
    "Flying Aerolia tomorrow, first time with them.",
    "Aerolia adds 12 aircraft to its fleet, according to its quarterly report.",
    "Comparing Aerolia and SkyNordic fares for December.",
]
AE_NEUTRAL_FR = [
    "Aerolia ouvre une nouvelle ligne {route} au printemps.",
    "Je prends Aérolia demain, première fois avec eux.",
    "Aerolia publie ses résultats trimestriels, trafic en hausse de 8 %.",
]
AE_CRISIS_EN = [
    "@aerolia check-in system is DOWN at CDG, hundreds of people stuck in line. What is going on?",
    "Aerolia outage: can't check in online, app says error 503, desks overwhelmed. #aerolia",
    "Missed my flight because Aerolia's systems crashed. Who pays for the new ticket?? @aerolia_help",
    "3 hours in the queue at the Aerolia desk, no staff, no info. The whole system is down.",
    "@aerolia is your website down? Can't access my booking {ref} and my flight leaves in 2 hours.",
    "Aerolia IT meltdown today, flights cancelled everywhere. Absolute chaos at the airport.",
]
AE_CRISIS_FR = [
    "@aerolia l'enregistrement est en panne à CDG, des centaines de personnes bloquées. C'est quoi ce bazar ?",
    "Panne informatique chez Aerolia : impossible de s'enregistrer, appli en erreur. #aerolia",
    "J'ai raté mon vol à cause de la panne Aerolia. Qui paie le nouveau billet ? @aerolia_help",
    "Trois heures de queue au comptoir Aérolia, aucun agent, aucune info. Tout est en panne.",
    "Aerolia : vols annulés partout à cause d'une panne informatique. Le chaos à l'aéroport.",
]
AE_OFFICIAL = [
    ("@aerolia", "en", "We're sorry for the wait today. Our team is working to get everyone on their way. DM us your booking reference."),
    ("@aerolia_help", "en", "Hi, we're sorry to hear this. Please DM us your booking reference so we can look into it."),
    ("@aerolia_help", "fr", "Bonjour, nous sommes désolés. Envoyez-nous votre numéro de réservation en message privé."),
    ("@aerolia", "en", "Winter sale: fares from 49 euros on all our European routes, this week only. #aerolia"),
]

# --- Lumelle, the skincare brand --------------------------------------------------------------------
LU_PRODUCTS = ["sérum Éclat", "crème Hydra+", "huile Nuit", "masque Argile", "contour des yeux", "SPF 50"]
LU_PRODUCTS_EN = ["Éclat serum", "Hydra+ cream", "night oil", "clay mask", "eye cream", "SPF 50"]
LU_COMPLAINTS_FR = [
    "La {product} Lumelle m'a donné des plaques rouges sur tout le visage. J'ai tout arrêté. #lumelle",
    "@lumelle_care commande {ref} jamais reçue, trois semaines que j'attends et aucune réponse.",
    "Le flacon de {product} Lumelle est arrivé cassé, et le service client ne répond pas.",
    "Lumelle a changé la formule de la {product} et maintenant elle pique. Très déçue.",
    "39 € la {product} Lumelle pour un résultat nul. Arnaque marketing.",
    "@lumelle remboursement refusé alors que le produit m'a fait une allergie. Scandaleux.",
    "Colis Lumelle {ref} perdu, le transporteur et la marque se renvoient la balle. Inadmissible.",
    "Boutons partout depuis que j'utilise la {product} Lumelle. On me dit que c'est « normal ».",
]
LU_COMPLAINTS_EN = [
    "Lumelle {product} gave me a rash all over my face. Stopped using it. #lumelle",
    "@lumelle_care order {ref} never arrived, three weeks and no reply to my emails.",
    "My Lumelle {product} arrived leaking and half empty. Customer service ignores me.",
    "Lumelle changed the {product} formula and now it burns. So disappointed.",
    "$45 for the Lumelle {product} and it did absolutely nothing. Total waste of money.",
]
LU_QUESTIONS_FR = [
    "@lumelle la {product} convient aux peaux sensibles ?",
    "Quelqu'un a testé la {product} de Lumelle ? Ça vaut le coup ?",
    "@lumelle_care comment suivre ma commande {ref} ?",
    "La {product} Lumelle est-elle testée sur les animaux ?",
]
LU_QUESTIONS_EN = [
    "@lumelle is the {product} safe during pregnancy?",
    "Has anyone tried Lumelle {product}? Worth it?",
    "@lumelle_care do you ship to Canada?",
]
LU_PRAISE_FR = [
    "Ma peau n'a jamais été aussi belle depuis la {product} Lumelle. Merci ! #lumelle",
    "Livraison rapide et échantillons offerts, merci @lumelle !",
    "La {product} de Lumelle, un vrai coup de cœur. Texture parfaite.",
]
LU_PRAISE_EN = [
    "Obsessed with the Lumelle {product}. My skin is glowing. #lumelle",
    "Lumelle customer care replaced my damaged order in two days. Great service.",
]
LU_NEUTRAL_FR = [
    "Lumelle ouvre une boutique à Lyon le mois prochain.",
    "Lumelle lance une {product} en édition limitée pour Noël.",
    "Article : Lumelle et Dermacorp se disputent le marché du soin naturel.",
]
LU_NEUTRAL_EN = [
    "Lumelle launches a refill programme for its {product}.",
    "Reading about Lumelle's new vegan line.",
]
LU_OFFICIAL = [
    ("@lumelle_care", "fr", "Bonjour, nous sommes désolés. Pouvez-vous nous écrire en message privé avec votre numéro de commande ?"),
    ("@lumelle", "fr", "Nouveau : la crème Hydra+ en format recharge, -30 % d'emballage. #lumelle"),
    ("@lumelle", "en", "Our Éclat serum is back in stock! #lumelle"),
]

# --- Posts that mention look-alikes or competitors only ---------------------------------------------
NOT_RELEVANT = [
    ("en", "Took the kids to Aerolia Park this weekend, the new rollercoaster is amazing."),
    ("en", "Aerolia Park closes for the winter on Sunday. Last chance for the water slides!"),
    ("fr", "Sortie en famille à Aerolia Park, les enfants ont adoré."),
    ("fr", "Concert des Lumelle band ce soir à la Cigale, on y sera !"),
    ("fr", "Le nouvel album des Lumelle est sorti, quelle pépite."),
    ("en", "Lumelle band live in Montreal was incredible last night."),
]
COMPETITOR_ONLY = [
    ("en", "SkyNordic lost my bag again. Third time this year."),
    ("en", "Volantis has the best legroom in economy, honestly."),
    ("en", "SkyNordic flight to Oslo was smooth and on time."),
    ("fr", "Volantis a annulé mon vol pour Rome, aucune compensation."),
    ("fr", "Je suis passée à Dermacorp pour mon sérum, moins cher et efficace."),
    ("fr", "Belle Peau m'a envoyé le mauvais produit, encore."),
    ("en", "Dermacorp's new sunscreen is amazing for oily skin."),
]
COMPARISONS = [
    ("en", "Aerolia vs SkyNordic for Paris-Oslo? SkyNordic was cheaper but Aerolia had better service."),
    ("en", "Switched from Aerolia to Volantis after the last delay. No regrets."),
    ("fr", "Lumelle ou Dermacorp pour une peau sèche ? J'hésite."),
    ("fr", "J'ai lâché Belle Peau pour Lumelle, la différence est nette."),
]

# --- Transparency: the ambassador, the owned "independent" blog, a coordinated burst, accusations ----
AMBASSADOR = [
    ("disclosed", "fr", "#partenariat #sponsorisé Ma routine du soir avec la {product} Lumelle, mon indispensable de l'hiver."),
    ("disclosed", "fr", "Collaboration commerciale avec @lumelle : code CHLOE15 pour -15 % sur la {product}. #pub"),
    ("undisclosed", "fr", "Franchement la {product} Lumelle c'est le meilleur produit que j'ai jamais testé. Foncez !"),
    ("undisclosed", "fr", "Code CHLOE15 pour -15 % sur tout le site Lumelle, profitez-en les filles 💕"),
    ("undisclosed", "en", "Honestly the Lumelle {product} changed my skin. Best thing I ever bought."),
]
PILOT = [
    ("undisclosed", "en", "Just flew Aerolia as a passenger for once: still the best airline in Europe, no contest."),
    ("disclosed", "en", "Proud to fly for Aerolia (views my own): new A321s are a joy to fly."),
]
OWNED_BLOG = [
    ("Avis indépendant : la crème Hydra+ de Lumelle, notre test sur 4 semaines",
     "Nous avons testé en toute indépendance la crème Hydra+ de Lumelle. Verdict : la meilleure crème hydratante du marché, loin devant Dermacorp."),
    ("Comparatif 2026 des sérums : pourquoi Lumelle arrive en tête",
     "Notre comparatif indépendant des sérums éclat place Lumelle en première position. Belle Peau et Dermacorp sont loin derrière."),
    ("Peau sensible : notre avis honnête sur le sérum Éclat Lumelle",
     "Avis 100 % indépendant : le sérum Éclat de Lumelle est le seul qui n'a pas irrité nos testeuses."),
]
COORDINATED = "Lumelle Hydra+ est la meilleure crème que j'ai jamais utilisée, je recommande à 100 % ! #lumelle"
ACCUSATIONS = [
    ("fr", "Lumelle paie des influenceuses sans le dire et le blog « indépendant » peau-naturelle-avis.fr appartient à la marque. C'est de la publicité déguisée."),
    ("fr", "Les avis 5 étoiles sur Lumelle sont faux, ce sont des comptes créés la semaine dernière. Arnaque."),
    ("en", "So Lumelle's 'independent' review site is registered to Lumelle itself? That's deceptive advertising."),
    ("en", "Aerolia advertises 49 euro fares but the checkout adds 60 in hidden fees. That's false advertising."),
    ("fr", "Aerolia annonce des billets à 49 € mais les frais cachés doublent le prix. Publicité mensongère."),
]
SPAM = [
    ("en", "🔥 Cheap Aerolia flights 90% OFF click here bit.ly/xx-deal 🔥🔥 #aerolia #travel #deal"),
    ("en", "Win free Lumelle products!!! Follow + RT + tag 3 friends 👉 giveaway-lumelle.top"),
]
ESCAPE = [  # what hostile or odd text looks like; the dashboard must show it as text
    ("en", "@aerolia <script>alert('x')</script> my booking page shows this, is it hacked? **urgent** [link](http://example.com)"),
    ("fr", "Lumelle ![img](http://example.com/x.png) <b>pourquoi</b> ma commande est bloquée ??"),
]

SOURCES = ["twitter"] * 50 + ["reddit"] * 12 + ["mastodon"] * 10 + ["bluesky"] * 12 + ["rss"] * 6


class Writer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.rows: list[dict] = []
        self.authors: dict[str, tuple[int, str]] = {}

    def author(self, name: str | None = None, followers: int | None = None, young: bool = False) -> tuple[str, int, str]:
        rng = self.rng
        name = name or rng.choice(FIRST) + rng.choice(LAST)
        if name not in self.authors:
            count = followers if followers is not None else int(10 ** rng.uniform(1, 4.3))
            if rng.random() < 0.03 and followers is None:
                count = int(10 ** rng.uniform(4.8, 5.6))  # the odd influencer or journalist
            created = START - timedelta(days=rng.randint(5, 20) if young else rng.randint(200, 4500))
            self.authors[name] = (count, created.strftime("%Y-%m-%dT%H:%M:%SZ"))
        count, created = self.authors[name]
        return name, count, created

    def add(self, when: datetime, lang: str, text: str, kind: str, source: str | None = None,
            author: str | None = None, followers: int | None = None, title: str | None = None,
            url: str | None = None, young: bool = False, parent: str | None = None) -> str:
        rng = self.rng
        source = source or rng.choice(SOURCES)
        n = len(self.rows) + 1
        if source == "rss":
            name, count, created = (author or "rédaction" if lang == "fr" else author or "newsroom"), None, None
            url = url or f"https://{'actu-voyage.fr' if lang == 'fr' else 'travelwire.example'}/articles/{n}"
            title = title or text.split(".")[0][:80]
        else:
            name, count, created = self.author(author, followers, young)
        source_id = {"twitter": str(1850000000000000000 + n * 7919), "reddit": f"t3_{n:06x}",
                     "mastodon": str(113000000000000000 + n * 104729), "bluesky": f"3l{n:011x}",
                     "rss": url or f"demo-{n}"}[source]
        if url is None:
            url = {"twitter": f"https://x.com/{name}/status/{source_id}",
                   "reddit": f"https://www.reddit.com/r/{'travel' if 'aerolia' in text.lower() else 'SkincareAddiction'}/comments/{source_id[3:]}/",
                   "mastodon": f"https://mastodon.social/@{name}/{source_id}",
                   "bluesky": f"https://bsky.app/profile/{name}.bsky.social/post/{source_id}"}[source]
        ref = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
        product = rng.choice(LU_PRODUCTS if lang == "fr" else LU_PRODUCTS_EN)
        route = rng.choice(AE_FR_ROUTES if lang == "fr" else AE_ROUTES)
        text = text.replace("{ref}", ref).replace("{product}", product).replace("{route}", route)
        row = {"id": f"demo-{n:04d}", "source": source, "source_id": source_id, "url": url, "author": name,
               "author_followers": count, "author_created_at": created,
               "created_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "lang": lang, "title": title, "text": text,
               "parent_id": parent, "thread_id": parent, "raw": {"demo": kind}}
        self.rows.append(row)
        return source_id


def moment(rng: random.Random, day: int, busy: bool = False) -> datetime:
    hour = rng.choice(range(6, 23)) if not busy else rng.choice(range(5, 14))
    return START + timedelta(days=day, hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))


def build(seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    w = Writer(rng)
    weights = [("complaint", 30), ("question", 12), ("praise", 14), ("neutral", 10)]
    pools = {
        ("Aerolia", "en", "complaint"): AE_COMPLAINTS_EN, ("Aerolia", "fr", "complaint"): AE_COMPLAINTS_FR,
        ("Aerolia", "en", "question"): AE_QUESTIONS_EN, ("Aerolia", "fr", "question"): AE_QUESTIONS_FR,
        ("Aerolia", "en", "praise"): AE_PRAISE_EN, ("Aerolia", "fr", "praise"): AE_PRAISE_FR,
        ("Aerolia", "en", "neutral"): AE_NEUTRAL_EN, ("Aerolia", "fr", "neutral"): AE_NEUTRAL_FR,
        ("Lumelle", "en", "complaint"): LU_COMPLAINTS_EN, ("Lumelle", "fr", "complaint"): LU_COMPLAINTS_FR,
        ("Lumelle", "en", "question"): LU_QUESTIONS_EN, ("Lumelle", "fr", "question"): LU_QUESTIONS_FR,
        ("Lumelle", "en", "praise"): LU_PRAISE_EN, ("Lumelle", "fr", "praise"): LU_PRAISE_FR,
        ("Lumelle", "en", "neutral"): LU_NEUTRAL_EN, ("Lumelle", "fr", "neutral"): LU_NEUTRAL_FR,
    }
    # Everyday traffic: Aerolia (mostly English) and Lumelle (mostly French), ~8 a day.
    for day in range(DAYS):
        for _ in range(rng.randint(6, 10)):
            brand = "Aerolia" if rng.random() < 0.55 else "Lumelle"
            lang = ("en" if rng.random() < 0.72 else "fr") if brand == "Aerolia" else ("fr" if rng.random() < 0.8 else "en")
            kind = rng.choices([k for k, _ in weights], [v for _, v in weights])[0]
            when = moment(rng, day)
            source = "rss" if kind == "neutral" and rng.random() < 0.5 else None
            parent = w.add(when, lang, rng.choice(pools[(brand, lang, kind)]), f"{brand.lower()}-{kind}", source=source)
            if kind == "complaint" and source is None and rng.random() < 0.15:
                replies = [o for o in (AE_OFFICIAL if brand == "Aerolia" else LU_OFFICIAL)[:3] if o[1] == lang]
                handle, reply_lang, reply = rng.choice(replies or (AE_OFFICIAL if brand == "Aerolia" else LU_OFFICIAL)[:1])
                w.add(when + timedelta(minutes=rng.randint(20, 300)), reply_lang, reply, "official", source=w.rows[-1]["source"],
                      author=handle.lstrip("@"), followers=250000 if brand == "Aerolia" else 48000, parent=parent)
    # Look-alikes and competitors only: not relevant to either brand.
    for _ in range(24):
        lang, text = rng.choice(NOT_RELEVANT + COMPETITOR_ONLY)
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, "not-relevant")
    for lang, text in COMPARISONS * 2:
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, "comparison")
    # The brands' own posts.
    for handle, lang, text in AE_OFFICIAL + LU_OFFICIAL:
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, "official", source="twitter", author=handle.lstrip("@"),
              followers=250000 if "aerolia" in handle else 48000)
    # Transparency risks.
    for kind, lang, text in AMBASSADOR * 2:
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, f"ambassador-{kind}", source="twitter",
              author="chloe_ambassadrice", followers=86000)
    for kind, lang, text in PILOT:
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, f"employee-{kind}", source="twitter",
              author="marc_pilot_aerolia", followers=3400)
    for i, (title, text) in enumerate(OWNED_BLOG):
        w.add(moment(rng, 7 + i * 12), "fr", text, "owned-review-blog", source="rss", author="La rédaction",
              title=title, url=f"https://peau-naturelle-avis.fr/{i + 1}-avis-lumelle")
    burst = START + timedelta(days=30, hours=21)
    for i in range(9):   # nine young accounts, the same words within 15 minutes
        w.add(burst + timedelta(minutes=i * 1.5, seconds=rng.randint(0, 40)), "fr", COORDINATED, "coordinated",
              source="twitter", author=f"avis_beaute_{rng.randint(100, 999)}", followers=rng.randint(3, 40), young=True)
    for lang, text in ACCUSATIONS:
        w.add(moment(rng, rng.randrange(20, DAYS)), lang, text, "deception-accusation",
              followers=int(10 ** rng.uniform(2.5, 4.6)))
    for lang, text in SPAM * 2:
        w.add(moment(rng, rng.randrange(DAYS)), lang, text, "spam", source="twitter", young=True, followers=12)
    for lang, text in ESCAPE:
        w.add(moment(rng, rng.randrange(DAYS - 3, DAYS)), lang, text, "hostile-markup", source="twitter")
    # The crisis: Aerolia's check-in systems go down on 2026-11-10.
    crisis = (CRISIS_DAY - START).days
    for _ in range(70):
        lang = "en" if rng.random() < 0.65 else "fr"
        w.add(moment(rng, crisis, busy=True), lang, rng.choice(AE_CRISIS_EN if lang == "en" else AE_CRISIS_FR),
              "aerolia-crisis", source=rng.choice(["twitter"] * 6 + ["bluesky", "mastodon", "reddit"]))
    # A news article on the outage, the next morning.
    w.add(CRISIS_DAY + timedelta(days=1, hours=7), "en",
          "Aerolia says a failed software update caused Tuesday's outage that left thousands of passengers stranded.",
          "aerolia-neutral", source="rss", author="newsroom", title="Aerolia blames software update for outage")
    w.rows.sort(key=lambda r: r["created_at"])
    return w.rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} mentions to {OUT}")


if __name__ == "__main__":
    main()
