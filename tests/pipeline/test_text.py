from pipeline.text import detect_language, detect_languages, mentioned_brands, mentioned_competitors, normalise


def test_normalise_keeps_links_handles_and_emoji_meaningful():
    text = normalise("@bob42 my bag is lost 😡 see https://www.aerolia.com/help/bags?id=1 @aerolia",
                     keep_handles=frozenset({"@aerolia"}))
    assert text == "@user my bag is lost enraged face see aerolia.com @aerolia"


def test_language_of_short_english_and_french_posts():
    assert detect_language("my flight was cancelled again, unbelievable") == "en"
    assert detect_language("mon vol a encore été annulé, c'est incroyable") == "fr"
    assert detect_language("👍 @aerolia") == "und"


def test_every_umsab_language_and_dutch_is_told():
    posts = {"de": "Der Flug wurde schon wieder gestrichen, unglaublich",
             "es": "Mi vuelo fue cancelado otra vez, increíble",
             "it": "Il mio volo è stato cancellato di nuovo, incredibile",
             "pt": "Meu voo foi cancelado de novo, inacreditável",
             "ar": "تم إلغاء رحلتي مرة أخرى، لا يصدق",
             "hi": "मेरी उड़ान फिर से रद्द हो गई, अविश्वसनीय",
             "nl": "Mijn vlucht is weer geannuleerd, ongelooflijk"}
    assert detect_languages(list(posts.values())) == list(posts)


def test_a_batch_gets_the_languages_each_post_would_get_alone():
    posts = ["my flight was cancelled again, unbelievable", "👍 @aerolia", "mon vol a encore été annulé",
             "", "Der Flug wurde gestrichen, unglaublich", "ok"]
    assert detect_languages(posts) == [detect_language(p) for p in posts] == ["en", "und", "fr", "und", "de", "und"]
    assert detect_languages([]) == []


def test_brand_keywords_ignore_case_and_accents(rules):
    assert mentioned_brands("Merci AÉROLIA pour le vol", rules.brands) == ["Aerolia"]
    assert mentioned_brands("#lumelle cream is nice", rules.brands) == ["Lumelle"]
    assert mentioned_brands("aerolians are a band", rules.brands) == []


def test_an_invisible_character_inside_a_brand_name_does_not_hide_it(rules):
    for invisible in ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e"):
        assert mentioned_brands(f"Aer{invisible}olia lost my bag", rules.brands) == ["Aerolia"], repr(invisible)
        assert mentioned_competitors(f"Sky{invisible}Nordic is cheaper", rules.brands) == ["SkyNordic"]
    assert mentioned_brands("Flew to Aerolia\u200b Park", rules.brands) == []   # the exclusion too
    assert mentioned_brands("Aerolia\u200bns are a band", rules.brands) == []


def test_a_mention_matching_only_an_exclusion_is_not_relevant(rules):
    assert mentioned_brands("New flats at Aerolia Park, lovely playground", rules.brands) == []
    assert mentioned_brands("Les Lumelle en concert ce soir !", rules.brands) == []
    assert mentioned_brands("Flew @aerolia home to Aerolia Park", rules.brands) == ["Aerolia"]


def test_competitors_are_found_for_share_of_voice(rules):
    assert mentioned_competitors("SkyNordic beat Aerolia on price", rules.brands) == ["SkyNordic"]


def test_posts_without_emoji_skip_the_scan_but_read_the_same():
    import emoji

    from pipeline.text import _emoji_words

    def scanned(text):   # what normalise did before the skip: every non-ASCII post went through the emoji scan
        return " ".join(emoji.replace_emoji(text, replace=_emoji_words).split())

    for text in ["Déjà très déçu par l’accueil… « nul »", "ok\ufe0e ok", "ok\ufe0f ok", "© Lumelle ™", "ℹ️ info",
                 "merci 👍🏽", "famille 👨\u200d👩\u200d👧", "1️⃣ étape"]:
        assert normalise(text) == scanned(text), text
