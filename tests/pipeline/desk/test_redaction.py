from pipeline.desk.redaction import redact, shown_url


def test_a_url_is_shown_without_its_password_query_values_or_fragment():
    url = "https://bob:s%40cret-pw@feeds.example:8443/rss?q=aerolia&token=abcdef123456#key=zz"
    assert shown_url(url) == "https://feeds.example:8443/rss?q=…&token=…#…"
    assert shown_url("https://hooks.slack.com/services/T1/B2/xyz", secret_path=True) == "https://hooks.slack.com/…"


def test_a_message_loses_the_secrets_of_its_url_however_the_library_wrote_them():
    url = "https://bob:s%40cret-pw@feeds.example/rss?token=abcdef123456"
    message = redact(f"GET {url}: Max retries exceeded with url: /rss?token=abcdef123456 (login s@cret-pw)", url)
    assert "cret-pw" not in message and "abcdef123456" not in message and "feeds.example/rss" in message
    assert redact("no url here, 3 fetched") == "no url here, 3 fetched"
    assert redact("see wss://a:b@host/x?cursor=123 and /p?k=v") == "see wss://host/x?cursor=… and /p?k=…"


def test_the_store_keeps_a_sources_error_without_its_password(backend_db):
    from pipeline.store import Store

    store = Store(backend_db)
    store.record_health("news", error="feed https://reader:hunter2@h/f?token=abcdef123 could not be reached")
    assert store.health().loc[0, "last_error"] == "feed https://h/f?token=… could not be reached"
