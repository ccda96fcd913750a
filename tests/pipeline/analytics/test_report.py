"""`ecoute report` and digests: what a marketing head receives, with hostile post text kept inert."""
import email.header
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from click.testing import CliRunner

from pipeline.alerts import digests
from pipeline.analytics import report
from pipeline.cli import main
from pipeline.mention import Labels, Mention
from pipeline.rules import Rules
from pipeline.store import Store, utcnow

HOSTILE = "[click me](https://evil.example) <img src=x onerror=alert(1)> **bold** <script>alert(2)</script>"
RULES = {"brands": [{"name": "Aerolia", "keywords": ["aerolia"], "competitors": ["SkyNordic"]}],
         "goals": [{"name": "Negative share under 20%", "metric": "negative_share", "target": 0.2}]}


@pytest.fixture
def rules() -> Rules:
    return Rules.model_validate(RULES)


@pytest.fixture
def week(tmp_path) -> Store:
    """Two weeks of Aerolia mentions; the top complaint of this week carries hostile text and a risk."""
    store = Store(str(tmp_path / "week.db"))
    now = datetime.now(timezone.utc)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = midnight + (now - midnight) / 2    # within today's UTC day whatever the hour the suite runs at
    posts = [Mention("twitter", str(i), HOSTILE if i == 0 else f"aerolia post {i}", url="javascript:alert(3)" if i == 0
                     else f"https://x.com/u/status/{i}", author="<b>bad</b>" if i == 0 else f"user{i}",
                     author_followers=100 * i, created_at=today - timedelta(days=i % 14)) for i in range(28)]
    store.save_mentions(posts)
    store.save_labels([Labels(m.key, "en", True, ("Aerolia",), "negative" if i % 3 == 0 else "positive", 0.9,
                              i % 3 == 0, 0.9, "complaint" if i % 3 == 0 else "praise", i % 3 == 0, 99 - i,
                              competitors=("SkyNordic",) if i % 4 == 0 else (), category="delivery" if i % 3 == 0 else None,
                              transparency=("undisclosed_promotion",) if i == 0 else (), model="test")
                       for i, m in enumerate(posts)], sla=3600)
    return store


class Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.links, self.sources = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        values = dict(attrs)
        self.links += [values["href"]] if "href" in values else []
        self.sources += [values[k] for k in ("src", "srcset") if k in values]
        assert not any(name.startswith("on") for name in values), (tag, attrs)


def test_html_report_is_self_contained_and_escapes_post_text(week, rules, tmp_path):
    built = report.write(tmp_path / "report.html", rules, since="7d", db=week)
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = Elements()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert not parsed.sources                                           # no external resource at all
    assert all(link.startswith("https://x.com/") for link in parsed.links)   # javascript: links dropped
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "&lt;b&gt;bad&lt;/b&gt;" in page
    for heading in ("Headlines", "Goals", "Top complaints", "Transparency risks", "Alerts"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count("<svg") >= 4                                      # volume, negative share, share of voice, goal trend
    assert "undisclosed_promotion" in page and "missed" in page
    # whole UTC days: 7 days back and today, two posts a day
    assert built.totals.iloc[0]["volume"] == 16 and built.complaints.iloc[0]["text"] == HOSTILE


def test_markdown_report_escapes_links_markup_and_html(week, rules, tmp_path):
    report.write(tmp_path / "report.md", rules, since="7d", db=week)
    text = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "](https://evil" not in text and "<img" not in text and "<script" not in text
    assert r"\[click me\](https:&#8203;//evil.example)" in text and r"\*\*bold\*\*" in text
    assert "data:image/svg+xml;base64," in text and "## Top complaints" in text


def test_report_command_on_an_older_store_with_until(week, tmp_path, monkeypatch):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(json.dumps(RULES))
    out = tmp_path / "r.html"
    until = (utcnow() - timedelta(days=7)).date().isoformat()
    result = CliRunner().invoke(main, ["report", "--since", "7d", "--until", until, "-o", str(out),
                                       "--db", week.url, "--rules", str(rules_file)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "<h2>Headlines</h2>" in out.read_text()
    bad = CliRunner().invoke(main, ["report", "--brand", "Nope", "-o", str(out), "--db", week.url,
                                    "--rules", str(rules_file)])
    assert bad.exit_code == 2 and "unknown brand 'Nope'" in bad.output


def test_digest_schedule_slots():
    daily = Rules.model_validate({**RULES, "digests": [
        {"name": "d", "schedule": "daily", "at": "08:00", "webhooks": [{"name": "w", "url": "https://h.example/x"}]},
        {"name": "w", "weekday": "mon", "at": "09:30", "webhooks": [{"name": "w", "url": "https://h.example/x"}]}]})
    day, week = daily.digests
    # Paris is UTC+1 in winter: 08:00 local is 07:00 UTC
    assert digests.latest_slot(day, datetime(2026, 11, 30, 6, 59), "Europe/Paris") == datetime(2026, 11, 29, 7, 0)
    assert digests.latest_slot(day, datetime(2026, 11, 30, 7, 0), "Europe/Paris") == datetime(2026, 11, 30, 7, 0)
    # 2026-12-02 is a Wednesday: the latest Monday 09:30 UTC is 30 November
    assert digests.latest_slot(week, datetime(2026, 12, 2, 12), "UTC") == datetime(2026, 11, 30, 9, 30)
    with pytest.raises(ValueError, match="goes nowhere"):
        Rules.model_validate({**RULES, "digests": [{"name": "x"}]})


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


@pytest.fixture
def webhook_server():
    bodies = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook/secret", bodies
    server.shutdown()


def test_a_due_digest_goes_by_email_and_webhook_once(week, smtp_server, webhook_server, monkeypatch):
    port, received = smtp_server
    url, bodies = webhook_server
    monkeypatch.setenv("DIGEST_HOOK", url)
    monkeypatch.delenv("SMTP_USERNAME", raising=False)
    rules = Rules.model_validate({**RULES, "digests": [{
        "name": "weekly", "schedule": "daily", "webhooks": [{"name": "chat", "url_env": "DIGEST_HOOK"}],
        "email": {"to": ["head@example.com"], "sender": "ecoute@example.com", "smtp_host": "127.0.0.1",
                  "smtp_port": port, "starttls": False}}]})
    [outcome] = digests.run_due(rules, week)
    assert outcome.sent_to == ["chat", "email:head@example.com"] and not outcome.errors
    [mail] = received
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    assert mail["To"] == "head@example.com" and subject.startswith("Écoute report: Aerolia")
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_payload(decode=True)
    assert b"&lt;script&gt;alert(2)&lt;/script&gt;" in html and b"<script>" not in html
    [body] = bodies
    assert "Aerolia: 16 (was 12) mentions" in body["text"] and "onerror" not in body["text"]
    assert digests.run_due(rules, week) == []                      # sent: not due again until tomorrow 08:00
    assert digests.last_sent(week, "weekly") is not None


def test_a_digest_whose_deliveries_all_fail_is_tried_again(week, monkeypatch):
    monkeypatch.delenv("NOWHERE", raising=False)
    rules = Rules.model_validate({**RULES, "digests": [{
        "name": "d", "webhooks": [{"name": "chat", "url_env": "NOWHERE"}],
        "email": {"to": ["a@example.com"], "sender": "e@example.com", "smtp_host": "127.0.0.1", "smtp_port": 9,
                  "starttls": False, "timeout": "2s"}}]})
    [outcome] = digests.run_due(rules, week)
    assert not outcome.sent and "$NOWHERE is not set" in outcome.errors[0] and "e-mail via 127.0.0.1:9" in outcome.errors[1]
    assert digests.last_sent(week, "d") is None and len(digests.run_due(rules, week)) == 1


def test_digest_command_sends_what_is_due_once(week, webhook_server, tmp_path):
    url, bodies = webhook_server
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(json.dumps({**RULES, "digests": [{"name": "d", "schedule": "daily",
                                                            "webhooks": [{"name": "chat", "url": url}]}]}))
    args = ["--db", week.url, "--rules", str(rules_file)]
    first = CliRunner().invoke(main, ["digest", "--once", *args])
    assert first.exit_code == 0, first.output
    assert first.output == "digest d: sent to chat\n" and len(bodies) == 1
    assert CliRunner().invoke(main, ["digest", "--once", *args]).output == ""      # not due again today
    assert "sent to chat" in CliRunner().invoke(main, ["digest", "--force", "--name", "d", *args]).output
    unknown = CliRunner().invoke(main, ["digest", "--once", "--name", "weekly", *args])
    assert unknown.exit_code == 2 and "no digest named weekly" in unknown.output


def test_a_right_to_left_override_in_an_author_name_stays_inside_the_name(week, rules, tmp_path):
    now = utcnow()
    post = Mention("twitter", "rlo", "aerolia lost my bag", author="mallory\u202e gnp.exe", author_followers=10 ** 6,
                   created_at=now - timedelta(hours=1))
    week.save_mentions([post])
    week.save_labels([Labels(post.key, "en", True, ("Aerolia",), "negative", 0.9, True, 0.9, "complaint", True, 100,
                             category="delivery", transparency=("undisclosed_promotion",), model="test")], sla=3600)
    for name in ("report.html", "report.md"):
        report.write(tmp_path / name, rules, since="7d", db=week)
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "\u202e" not in text, name
        assert text.count("\u2068mallory gnp.exe\u2069") == 2, name          # top complaints and risks
