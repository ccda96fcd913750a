"""Built-in EN/FR cue lists for transparency risks (see pipeline/alerts/transparency.py).

Every list is matched as whole words, case- and accent-insensitively. `rules.yaml` adds to each list
under `transparency:` (and `transparency.remove` drops a default that misfires); nothing here is read
directly by the detector, only through `Rules.transparency`.
"""

# A post carrying one of these says it is paid, sponsored or affiliated (FTC: "#ad", "#sponsored";
# French law of 9 June 2023: "Publicité" or "Collaboration commerciale").
DISCLOSURE_MARKERS = (
    "#ad", "#ads", "[ad]", "(ad)", "ad |", "ad:", "#advert", "#advertisement", "#advertising", "advertisement",
    "#sponsored", "sponsored", "sponsored by", "#spon", "paid partnership", "#paidpartnership", "paid promotion",
    "paid post", "#partner", "in partnership with", "partnered with", "#affiliate", "affiliate link",
    "affiliate links", "earn a commission", "earn a small commission", "commission earned",
    "#pub", "#publicité", "publicité", "#partenariat", "partenariat rémunéré", "partenariat commercial",
    "en partenariat avec", "collaboration commerciale", "#collaborationcommerciale", "collaboration rémunérée",
    "sponsorisé", "sponsorisée", "#sponsorisé", "#sponso", "contenu sponsorisé", "lien affilié", "liens affiliés",
    "lien d'affiliation", "liens d'affiliation", "#affiliation",
)

# A promotion: a way to buy, a code, a gift from the brand. Promo codes and affiliate links are found
# by pattern in transparency.py; "promo code" alone is not a cue (people ask for one, or complain that
# theirs failed): the code itself is.
PROMOTION_CUES = (
    "link in bio", "link in my bio", "links in bio", "links in my bio", "in my bio", "link in description",
    "use my code", "with my code", "referral link", "referral code", "my referral", "my link", "affiliate code",
    "swipe up", "shop my", "shop the look", "shop it",
    "gifted by", "gifted me", "was gifted", "got gifted", "#gifted", "gift me", "pr package", "pr box",
    "lien en bio", "lien dans ma bio", "lien dans la bio", "liens en bio", "dans ma bio",
    "utilisez mon code", "avec mon code", "lien de parrainage",
    "code de parrainage", "mon lien", "offert par", "offerte par", "offerts par", "offertes par",
    "reçu gratuitement", "reçue gratuitement", "colis presse", "envoyé par la marque",
)

# Hosts of affiliate programmes: a link here earns the poster money.
AFFILIATE_DOMAINS = (
    "amzn.to", "amazon-adsystem.com", "liketk.it", "ltk.app", "shopltk.com", "rstyle.me", "shopmy.us",
    "go.shopmy.us", "howl.me", "awin1.com", "tidd.ly", "sjv.io", "skimresources.com", "shareasale.com",
    "go.magik.ly", "click.linksynergy.com", "prf.hn", "effiliation.com", "kwanko.com",
)

# Link shorteners: promotion only when the post also advertises a deal (they also carry news).
LINK_SHORTENERS = ("bit.ly", "tinyurl.com", "t.ly", "ow.ly", "cutt.ly", "rebrand.ly", "is.gd", "shorturl.at")

# Query parameters that mark a referral or affiliate link.
AFFILIATE_PARAMS = ("ref", "referral", "refer", "aff", "affid", "aff_id", "affiliate", "affiliate_id",
                    "partner", "tag", "parrain", "parrainage", "utm_medium=affiliate", "utm_medium=influencer",
                    "utm_source=influencer", "utm_campaign=influencer")

# An employee, agent or ambassador saying so.
AFFILIATION_DISCLOSURES = (
    "i work at", "i work for", "i work with", "working at", "working for", "i'm an employee", "employee of",
    "#employee", "views are my own", "views my own", "opinions are my own", "opinions my own", "my employer",
    "cabin crew at", "proud to work", "proud to fly for", "fly for", "full disclosure", "disclosure:",
    "ambassador", "brand ambassador", "#ambassador", "i consult for", "consultant for", "paid by",
    "je travaille chez", "je travaille pour", "je bosse chez", "je bosse pour", "salarié de", "salariée de",
    "salarié chez", "salariée chez", "employé de", "employée de", "employé chez", "employée chez",
    "mon employeur", "ambassadrice", "ambassadeur", "partenaire de", "avis perso", "je suis payée par",
    "je suis payé par",
    # content on a brand's own site saying whose it is
    "édité par", "ce site appartient à", "site de la marque", "published by", "owned by", "own editorial team",
)

# Praise or a push to buy, as an affiliated account would post it.
PRAISE_CUES = (
    "best", "love", "loved", "obsessed", "amazing", "stunning", "incredible", "perfect", "perfection",
    "recommend", "highly recommend", "so good", "that good", "really good", "won't regret", "game changer",
    "holy grail", "favourite", "favorite", "must-have", "must have", "beats", "brilliant", "excellent",
    "meilleur", "meilleure", "adore", "j'adore", "parfait", "parfaite", "impeccable", "génial", "géniale",
    "pépite", "ne jure que par", "recommande", "conseille", "incroyable", "indispensable", "coup de cœur",
    "foncez", "top",
)

# "Independent" self-descriptions that a brand-owned site must not make.
INDEPENDENCE_CLAIMS = (
    "independent", "independently", "unbiased", "impartial", "objective review", "honest review",
    "consumer blog", "real consumers", "real customers", "not sponsored",
    "indépendant", "indépendante", "indépendants", "indépendantes", "en toute indépendance", "avis objectif",
    "avis honnête", "blog de consommateurs", "blog de consommatrices", "vrais consommateurs",
    "vraies consommatrices", "vrais clients", "vraies clientes", "non sponsorisé", "impartiale",
)

# Someone alleging deception.
ACCUSATION_PHRASES = (
    "fake review", "fake reviews", "fake testimonials", "paid reviews", "bought reviews", "paid shill",
    "paid shills", "shills", "astroturf", "astroturfing", "sock puppet", "sock puppets", "hidden ad",
    "hidden ads", "disguised ad", "covert ad", "covert advertising", "undisclosed ad", "undisclosed ads",
    "undisclosed sponsorship", "undisclosed partnership", "stealth marketing", "false advertising",
    "deceptive advertising", "misleading advertising", "deceptive marketing", "misleading marketing",
    "dishonest marketing", "without disclosing", "without labelling", "without labeling", "never disclosed",
    "didn't disclose", "a front for", "fake blog",
    "faux avis", "avis bidon", "avis bidons", "avis payés", "avis achetés", "avis truqués", "faux témoignages",
    "pub déguisée", "pubs déguisées", "publicité déguisée", "pub cachée", "pubs cachées", "publicité cachée",
    "publicité mensongère", "publicité trompeuse", "pratique commerciale trompeuse",
    "pratiques commerciales trompeuses", "placement de produit non déclaré", "partenariat non déclaré",
    "collaboration cachée", "collaboration non déclarée", "blog bidon", "faux blog", "site bidon", "astroturfing",
)

# An accusation also reads as one of these things near one of the words after it ("the reviews are fake",
# "les avis 5 étoiles sont achetés"), a few words apart, in either order.
ACCUSATION_TARGETS = (
    "review", "reviews", "rating", "ratings", "testimonial", "testimonials", "5-star", "five-star",
    "blog", "comparison", "ranking", "avis", "commentaires", "témoignage", "témoignages", "étoiles",
    "notes", "comparatif", "classement",
)
ACCUSATION_WORDS = (
    "fake", "bought", "paid", "bogus", "planted", "fabricated", "rigged", "fraudulent", "bot", "bots",
    "faux", "fausses", "achetés", "achetées", "payés", "payées", "payé", "payée", "bidon", "bidons",
    "truqués", "truquées", "truqué", "bots",
)

LISTS = ("disclosure_markers", "promotion_cues", "affiliate_domains", "link_shorteners", "affiliate_params",
         "affiliation_disclosures", "praise_cues", "independence_claims", "accusation_phrases",
         "accusation_targets", "accusation_words")
