#!/usr/bin/env python3
"""Deterministic generator of the redaction evaluation set (see README.md).

    python3 tests/redaction_eval/generate.py   # rewrites dev.jsonl and test.jsonl

Each record: {"id", "split", "type", "family", "format", "lang", "text", "values": [{"type", "value"}]}.
`values` lists every secret / PII value in `text` (empty for near-miss negatives). Values are
drawn from the same value generators in both splits; the sentence frames around them are
split: frames with an even index go to dev, odd to test, so tuning on dev never sees a test
frame. Standard library only; the seed fixes every byte of the output.
"""
import base64
import json
import os
import random
import string

HERE = os.path.dirname(os.path.abspath(__file__))
R = random.Random(0x5EC12E7)

UP, LO, DI = string.ascii_uppercase, string.ascii_lowercase, string.digits
AN = UP + LO + DI


def rs(chars, n):
    return "".join(R.choice(chars) for _ in range(n))


def luhn_complete(prefix, length):
    body = prefix + rs(DI, length - len(prefix) - 1)
    total = 0
    for i, d in enumerate(reversed(body)):
        v = int(d)
        if i % 2 == 0:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return body + str((10 - total % 10) % 10)


def luhn_ok(num):
    total = 0
    for i, d in enumerate(reversed(num)):
        v = int(d)
        if i % 2 == 1:
            v *= 2
            if v > 9:
                v -= 9
        total += v
    return total % 10 == 0


def iban(country, bban):
    rearranged = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in rearranged))
    return country + "%02d" % (98 - n % 97) + bban


def grouped(s, sizes, sep):
    out, i = [], 0
    for size in sizes:
        out.append(s[i:i + size])
        i += size
    if i < len(s):
        out.append(s[i:])
    return sep.join(g for g in out if g)


# ---------------------------------------------------------------- value generators
def v_aws_access():
    return R.choice(["AKIA", "ASIA"]) + rs(UP + "234567", 16)


def v_aws_secret():
    return rs(AN + "/+", 40)


def v_github():
    k = R.random()
    if k < 0.7:
        return R.choice(["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]) + rs(AN, 36)
    return "github_pat_" + rs(UP + DI, 22) + "_" + rs(AN, 59)


def v_openai():
    if R.random() < 0.5:
        return "sk-" + rs(AN, 48)
    return "sk-proj-" + rs(AN + "-_", R.randint(40, 120))


def v_anthropic():
    return "sk-ant-api03-" + rs(AN + "-_", 93) + "AA"


def v_slack():
    kind = R.choice(["xoxb", "xoxp", "xapp"])
    if kind == "xapp":
        return "xapp-1-" + rs(UP + DI, 11) + "-" + rs(DI, 13) + "-" + rs(LO + DI, 64)
    return "%s-%s-%s-%s" % (kind, rs(DI, 12), rs(DI, 13), rs(AN, 24))


def v_stripe():
    return R.choice(["sk_live_", "rk_live_"]) + rs(AN, R.choice([24, 32, 99]))


def v_google():
    return "AIza" + rs(AN + "-_", 35)


def v_private_key():
    label = R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY",
                      "ENCRYPTED PRIVATE KEY", "DSA PRIVATE KEY"])
    lines = [rs(AN + "+/", 64) for _ in range(R.randint(2, 6))]
    lines.append(rs(AN + "+/", R.randint(8, 60)) + R.choice(["", "=", "=="]))
    return "-----BEGIN %s-----\n%s\n-----END %s-----" % (label, "\n".join(lines), label)


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def v_jwt():
    header = {"alg": R.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    payload = {"sub": rs(DI, 8), "iat": 1700000000 + R.randint(0, 10**7), "name": R.choice(["ana", "li", "joe"])}
    return b64url(header) + "." + b64url(payload) + "." + rs(AN + "-_", R.choice([43, 86, 342]))


PW_SYMBOLS = "!@#$%^&*-_+=?~"


def v_password(quoted=False, prose=False):
    k = R.random()
    words = ["Summer", "Winter", "Falcon", "Orange", "Tiger", "Rocket", "Maple", "Dragon", "Sunset", "Coffee"]
    if k < 0.25:
        v = R.choice(words) + str(R.randint(10, 2099)) + R.choice("!#$*?")
    elif k < 0.5:
        v = rs(AN, R.randint(10, 18))
        v = v[:3] + R.choice(DI) + v[3:]
    elif k < 0.7:
        v = "".join(R.choice(AN + PW_SYMBOLS) for _ in range(R.randint(10, 20)))
        v = R.choice(UP) + v + R.choice(DI)
    elif k < 0.85:
        v = "-".join(R.choice(["tango", "blue", "river", "stone", "cloud", "pixel"]) for _ in range(3)) + "-" + rs(DI, 2)
    else:
        v = "Tmp" + rs(DI, 4) + "-" + rs(UP + LO, 4)
    if quoted and R.random() < 0.3:
        v = " ".join(R.choice(["correct", "horse", "battery", "staple", "purple", "monkey"]) for _ in range(4)) + " " + rs(DI, 2)
    return v


def v_url_password():
    v = rs(AN + "-_.~!*", R.randint(8, 24))
    if R.random() < 0.3:
        v = v[:4] + R.choice(["%40", "%2F", "%23", "%3A"]) + v[4:]
    return v


def v_email():
    first = R.choice(["jane", "john", "maria", "li", "ahmed", "olga", "kenji", "sofia", "pierre", "anna"])
    last = R.choice(["doe", "smith", "garcia", "wang", "khan", "ivanova", "tanaka", "rossi", "martin", "novak"])
    local = R.choice([first + "." + last, first + "_" + last, first[0] + last + str(R.randint(1, 99)),
                      first + "+" + R.choice(["news", "llm", "work"]), first.capitalize() + "." + last.capitalize()])
    domain = R.choice(["example.com", "mail.example.co.uk", "company.io", "uni-berlin.de", "startup.ai",
                       "orange.fr", "web.de", "yahoo.co.jp", "proton.me", "outlook.com", "firm.org",
                       "shop.store", "agency.dev", "news.app", "corp.example.net", "gov.example.gov",
                       "school.edu", "bank.ch", "mail.ru", "qq.com", "example.online", "studio.design"])
    if R.random() < 0.1:
        domain = domain.upper()
    return local + "@" + domain


def v_card():
    k = R.random()
    if k < 0.4:
        n, sizes = luhn_complete("4" + rs(DI, 5), 16), [4, 4, 4, 4]
    elif k < 0.7:
        n, sizes = luhn_complete(R.choice(["51", "52", "53", "54", "55", "2221", "2720"]), 16), [4, 4, 4, 4]
    elif k < 0.85:
        n, sizes = luhn_complete(R.choice(["34", "37"]), 15), [4, 6, 5]
    else:
        n, sizes = luhn_complete("6011", 16), [4, 4, 4, 4]
    sep = R.choice(["", " ", "-"])
    return n if sep == "" else grouped(n, sizes, sep)


def v_ssn():
    area = R.choice([a for a in range(1, 900) if a != 666])
    s = "%03d%02d%04d" % (area, R.randint(1, 99), R.randint(1, 9999))
    sep = R.choice(["-", "-", " ", "."])
    return grouped(s, [3, 2, 4], sep)


def v_iban():
    c = R.choice(["DE", "GB", "FR", "NL", "ES", "IT", "CH", "AT", "BE", "PL"])
    bban = {
        "DE": lambda: rs(DI, 18),
        "GB": lambda: rs(UP, 4) + rs(DI, 14),
        "FR": lambda: rs(DI, 10) + rs(UP + DI, 11) + rs(DI, 2),
        "NL": lambda: rs(UP, 4) + rs(DI, 10),
        "ES": lambda: rs(DI, 20),
        "IT": lambda: rs(UP, 1) + rs(DI, 10) + rs(UP + DI, 12),
        "CH": lambda: rs(DI, 17),
        "AT": lambda: rs(DI, 16),
        "BE": lambda: rs(DI, 12),
        "PL": lambda: rs(DI, 24),
    }[c]()
    v = iban(c, bban)
    return grouped(v, [4] * 8, " ") if R.random() < 0.5 else v


def d(n):
    return rs(DI, n)


def nz(n):
    return R.choice("23456789") + rs(DI, n - 1)


PHONES = [
    lambda: "+1 (%s) %s-%s" % (nz(3), nz(3), d(4)),
    lambda: "+1 %s-%s-%s" % (nz(3), nz(3), d(4)),
    lambda: "+1 %s %s %s" % (nz(3), nz(3), d(4)),
    lambda: "(%s) %s-%s" % (nz(3), nz(3), d(4)),
    lambda: "%s-%s-%s" % (nz(3), nz(3), d(4)),
    lambda: "%s.%s.%s" % (nz(3), nz(3), d(4)),
    lambda: "+1.%s.%s.%s" % (nz(3), nz(3), d(4)),
    lambda: "+1%s%s%s" % (nz(3), nz(3), d(4)),
    lambda: "+44 20 %s %s" % (nz(4), d(4)),
    lambda: "020 %s %s" % (nz(4), d(4)),
    lambda: "+44 7700 %s" % d(6),
    lambda: "07700 %s" % d(6),
    lambda: "+44 (0)20 %s %s" % (nz(4), d(4)),
    lambda: "+44 161 %s %s" % (nz(3), d(4)),
    lambda: "0161 %s %s" % (nz(3), d(4)),
    lambda: "+49 30 %s" % nz(7),
    lambda: "030 %s" % nz(7),
    lambda: "+49 (0)30 %s" % nz(8),
    lambda: "0049 30 %s" % nz(7),
    lambda: "+49 151 %s" % nz(8),
    lambda: "+33 1 %s %s %s %s" % (d(2), d(2), d(2), d(2)),
    lambda: "01 %s %s %s %s" % (d(2), d(2), d(2), d(2)),
    lambda: "06.%s.%s.%s.%s" % (d(2), d(2), d(2), d(2)),
    lambda: "+33 6 %s %s %s %s" % (d(2), d(2), d(2), d(2)),
    lambda: "+34 %s %s %s" % (R.choice("69") + d(2), d(3), d(3)),
    lambda: "+39 06 %s %s" % (d(4), d(4)),
    lambda: "+31 20 %s %s" % (nz(3), d(4)),
    lambda: "+81 3-%s-%s" % (d(4), d(4)),
    lambda: "03-%s-%s" % (d(4), d(4)),
    lambda: "+91 %s %s" % (R.choice("6789") + d(4), d(5)),
    lambda: "+55 11 9%s-%s" % (d(4), d(4)),
    lambda: "+61 2 %s %s" % (d(4), d(4)),
    lambda: "+7 (495) %s-%s-%s" % (nz(3), d(2), d(2)),
    lambda: "+86 138 %s %s" % (d(4), d(4)),
    lambda: "+353 1 %s %s" % (nz(3), d(4)),
    lambda: "+41 44 %s %s %s" % (nz(3), d(2), d(2)),
]


def v_phone():
    return R.choice(PHONES)()


def v_ipv4():
    k = R.random()
    if k < 0.3:
        return "10.%d.%d.%d" % (R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))
    if k < 0.5:
        return "192.168.%d.%d" % (R.randint(0, 255), R.randint(1, 254))
    return "%d.%d.%d.%d" % (R.randint(11, 223), R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


# ---------------------------------------------------------------- frames
# {v} is the value. Frames are (format, lang, template). Even index: dev; odd index: test.
GENERIC = [
    ("prose", "en", "Here is what you asked for: {v}. Let me know if you need anything else."),
    ("prose", "en", "Sure! The value is {v} and it should work now."),
    ("prose", "de", "Gern, hier ist der Wert: {v} – bitte vertraulich behandeln."),
    ("prose", "fr", "Voici la valeur demandée : {v}. N'hésitez pas si besoin."),
    ("prose", "es", "Aquí tienes el dato: {v}. Avísame si necesitas algo más."),
    ("prose", "it", "Ecco il valore richiesto: {v}, fammi sapere."),
    ("prose", "pt", "Aqui está o valor: {v}. Qualquer dúvida, me avise."),
    ("prose", "nl", "Hier is de waarde: {v}. Laat het weten als je meer nodig hebt."),
    ("prose", "ru", "Вот значение: {v}. Сообщите, если нужно что-то ещё."),
    ("prose", "zh", "这是你要的信息：{v}，请妥善保管。"),
    ("prose", "ja", "ご依頼の値は {v} です。"),
    ("prose", "pl", "Oto wartość: {v}. Daj znać, jeśli potrzebujesz więcej."),
    ("log", "en", "2024-05-01T12:00:03Z INFO request handled value={v} latency_ms=42"),
    ("log", "en", "[worker-3] WARN found {v} in upstream payload (request 7f3a)"),
    ("json", "en", '{{"id": 17, "note": "{v}", "status": "ok"}}'),
    ("json", "en", '[{{"field": "contact", "value": "{v}"}}]'),
    ("code", "en", 'print("{v}")'),
    ("code", "en", "const value = '{v}';"),
    ("config", "en", "value: {v}\nenabled: true"),
    ("config", "en", "[section]\nvalue = {v}"),
]

PER_TYPE = {
    "email": [
        ("prose", "en", "Please email {v} for access."),
        ("prose", "en", "Contact: <{v}>"),
        ("prose", "de", "Schreiben Sie an {v}, danke."),
        ("prose", "fr", "Écrivez à {v} pour toute question."),
        ("json", "en", '{{"email": "{v}", "verified": true}}'),
        ("log", "en", "user login ok user={v} method=password"),
        ("prose", "en", "mailto:{v}"),
        ("code", "en", "send_mail(to='{v}')"),
    ],
    "payment_card": [
        ("prose", "en", "Charge the card ({v}) today."),
        ("prose", "en", "Card on file: [{v}]"),
        ("prose", "en", "the card number is {v}, expiry 09/27"),
        ("json", "en", '{{"card_number": "{v}", "exp": "09/27"}}'),
        ("prose", "de", "Kreditkarte ({v}) wurde belastet."),
        ("prose", "es", "Tarjeta: {v} (caduca 11/26)"),
        ("log", "en", "payment declined card={v} code=51"),
        ("prose", "fr", "La carte [{v}] a été refusée."),
    ],
    "us_ssn": [
        ("prose", "en", "SSN: {v}"),
        ("prose", "en", "Her social security number ({v}) is on file."),
        ("json", "en", '{{"ssn": "{v}"}}'),
        ("log", "en", "lookup ssn={v} result=found"),
        ("prose", "en", "The applicant's SSN is {v}."),
        ("prose", "es", "Número de seguro social: {v}"),
    ],
    "iban": [
        ("prose", "en", "Transfer to IBAN {v} by Friday."),
        ("prose", "de", "Bitte überweisen Sie auf {v}."),
        ("json", "en", '{{"iban": "{v}", "bic": "DEUTDEFF"}}'),
        ("prose", "fr", "IBAN : {v}"),
        ("prose", "nl", "Rekeningnummer ({v}) is bevestigd."),
        ("log", "en", "payout queued iban={v}"),
    ],
    "phone": [
        ("prose", "en", "Call me at {v} tomorrow."),
        ("prose", "en", "Phone ({v}) or email."),
        ("prose", "en", "Tel: {v}"),
        ("prose", "de", "Rufen Sie uns an: {v}."),
        ("prose", "fr", "Téléphone : {v}"),
        ("prose", "es", "Llámanos al {v}, gracias."),
        ("json", "en", '{{"phone": "{v}"}}'),
        ("log", "en", "sms sent to={v} status=delivered"),
        ("prose", "ja", "電話番号: {v}"),
        ("prose", "it", "Chiamaci al {v}."),
    ],
    "ipv4": [
        ("log", "en", "connection from {v}:51234 accepted"),
        ("log", "en", "client_ip={v} status=200"),
        ("prose", "en", "The server is at {v}, port 22."),
        ("config", "en", "host: {v}\nport: 5432"),
        ("json", "en", '{{"remote_addr": "{v}"}}'),
        ("prose", "de", "Der Server hat die Adresse {v}."),
    ],
}

SECRET_FRAMES = [
    ("prose", "en", "Use this key: {v}"),
    ("code", "en", 'client = Client(api_key="{v}")'),
    ("config", "en", "export TOKEN={v}"),
    ("json", "en", '{{"credentials": {{"key": "{v}"}}}}'),
    ("log", "en", "DEBUG auth header value {v} rejected"),
    ("prose", "de", "Hier ist der Schlüssel: {v} (nicht teilen)."),
    ("prose", "fr", "La clé est {v}, gardez-la secrète."),
    ("code", "en", "headers = {{'Authorization': 'Bearer {v}'}}"),
    ("prose", "zh", "密钥：{v}"),
    ("prose", "es", "La clave ({v}) caduca mañana."),
]

CONFIG_KEYS = ["password", "db_password", "DB_PASSWORD", "MYSQL_ROOT_PASSWORD", "PGPASSWORD", "psk", "wpa_psk",
               "secret", "client_secret", "api_key", "apikey", "auth_token", "access_token", "passphrase",
               "smtp_password", "redis_password", "admin_pass", "SECRET_KEY"]
CONFIG_FRAMES = [
    ("config", "en", "{k}={v}"),
    ("config", "en", '{k}="{v}"'),
    ("config", "en", "{k} = '{v}'"),
    ("config", "en", '{k}: "{v}"'),
    ("config", "en", "{k}: {v}"),
    ("json", "en", '{{"{k}": "{v}"}}'),
    ("code", "en", 'export {k}="{v}"'),
    ("code", "en", "settings.{k} = '{v}'"),
    ("config", "en", "network={{\n  ssid=\"home\"\n  {k}=\"{v}\"\n}}"),
    ("code", "en", "cli --{k}={v} --verbose"),
]
CONFIG_QUOTED = {1, 2, 3, 5, 6, 7, 8}

URL_FRAMES = [
    ("config", "en", "DATABASE_URL={v}"),
    ("code", "en", 'engine = create_engine("{v}")'),
    ("prose", "en", "Connect with {v} and run the migration."),
    ("log", "en", "ERROR could not connect to {v}: timeout"),
    ("json", "en", '{{"broker_url": "{v}"}}'),
    ("config", "en", "url: {v}"),
    ("prose", "de", "Verbindung über {v} herstellen."),
    ("code", "en", "redis.from_url('{v}')"),
]

PROSE_PW_FRAMES = [
    ("prose", "en", "The temporary password is {v} — please change it after login."),
    ("prose", "en", "Log in as admin with the admin password ({v})."),
    ("prose", "en", "I reset your password to {v}"),
    ("prose", "en", "Your new password is: {v}"),
    ("prose", "en", "The Wi-Fi password is {v}."),
    ("prose", "en", "username: root, password {v}"),
    ("prose", "en", "Password for the staging database is {v}"),
    ("prose", "en", "the root password was {v} until yesterday"),
    ("prose", "de", "Das Passwort lautet {v}."),
    ("prose", "de", "Ihr neues Kennwort ist {v}"),
    ("prose", "fr", "Le mot de passe est {v}"),
    ("prose", "fr", "Mot de passe temporaire : {v}"),
    ("prose", "es", "La contraseña es {v}"),
    ("prose", "es", "Tu contraseña temporal: {v}"),
    ("prose", "pt", "A senha é {v}"),
    ("prose", "it", "La password è {v}"),
    ("prose", "nl", "Het wachtwoord is {v}"),
    ("prose", "pl", "Hasło to {v}"),
    ("prose", "ru", "Пароль: {v}"),
    ("prose", "ru", "Временный пароль — {v}"),
    ("prose", "zh", "密码是{v}，请尽快修改。"),
    ("prose", "zh", "临时密码：{v}"),
    ("prose", "ja", "パスワードは {v} です。"),
    ("prose", "ko", "비밀번호는 {v} 입니다."),
    ("prose", "tr", "Şifre: {v}"),
    ("log", "en", "WARN user created with password {v}"),
]

NEGATIVES = [
    "See logo@2x.png and icon@3x.webp in the assets folder.",
    "Use sprite@1.5x.jpg for retina screens.",
    "@media screen and (max-width: 600px) {{ body {{ margin: 0; }} }}",
    "Annotate the method with @Override and @Deprecated.",
    "npm install @types/node@20.11.5 --save-dev",
    "ssh admin@localhost -p 2222",
    "image: nginx@sha256:{hex64}",
    "Released version 1.2.3.4.5 today; build 10.0.19045.3693.",
    "Meeting on 2024-01-15 at 12:30:45 UTC, then 15.01.2024 again.",
    "uuid {uuid}",
    "commit {hex40}",
    "sha256 {hex64}",
    "blob {b64}",
    "Order number {badluhn} shipped.",
    "Tracking 1Z999AA10123456784 arrives Monday.",
    "ISBN 978-3-16-148410-0 is the second edition.",
    "The total is $1,299.99 or 3 x 433.33 EUR.",
    "We now have 1,234,567 users and 8080 is the port.",
    "Invalid SSN examples: 000-12-3456, 666-12-3456 and 987-65-4321.",
    "IBAN DE89 3704 0044 0532 0130 01 fails its checksum.",
    "The password is incorrect, please try again.",
    "A password is required for this account.",
    "Reset your password: click the link in the email.",
    "The password field must not be empty.",
    "password: <redacted>",
    "password: ${{DB_PASSWORD}}",
    "password: '********'",
    "Passwordless login is enabled.",
    "Use the sk- prefix for OpenAI keys and sk_test_ for Stripe test mode.",
    "Read https://medium.com/@author/post-{d6} and https://docs.example.com/path?x=1#frag.",
    "Timestamp 1700000000123 and pid 12345.",
    "Error code 0x80070005, serial ABCD-1234-EFGH.",
    "Location 51.5074, -0.1278; temperature 20.5 C.",
    "Build 20240115.3 passed in 132.4 s.",
    "Ticket ID 1234-5678 is closed.",
    "The password must contain 12 characters and 1 digit.",
    "Enter the admin password (min. 8 characters).",
    "Set a password (optional) for the archive.",
    "Das Passwort ist falsch. Bitte erneut versuchen.",
    "Le mot de passe est incorrect.",
    "La contraseña es obligatoria.",
    "Пароль неверный, попробуйте снова.",
    "密码错误，请重试。",
    "Step 3.1.4 of the guide, chapter 12.2.",
    "The API key goes in the X-Api-Key header.",
    "{{\"tokens\": 1234, \"max_tokens\": 4096, \"token_type\": \"Bearer\"}}",
    "Decorators like @app.route('/') and emails in docs use @ sparingly.",
    "Call extension 4567 or room 020.",
    "Price list: 0.99, 1.49, 2.99, 10.00.",
    "The matrix is 1024 x 768 with 16 777 216 colours.",
    "Coordinates (123, 456) and (7890, 1234).",
    "Log line: 2024-05-01 12:00:00,123 INFO started in 4.2 s",
    "Version string v2.14.0-rc.1+build.5678",
    "Chapter 415-555 of the manual covers 2671 cases.",
    "Use user@host:path for scp, e.g. scp file deploy@buildhost:/srv.",
    "The secret to good bread is patience.",
    "My password manager is great.",
    "Hash: $2b$12$KIXQJ6mR7Fz9Q1Q2Q3Q4QOe (bcrypt cost 12)",
]

NEG_LANG = {"Das": "de", "Le ": "fr", "La ": "es", "Пар": "ru", "密码": "zh"}


def fill_negative(t):
    return t.format(
        hex64=rs("0123456789abcdef", 64),
        hex40=rs("0123456789abcdef", 40),
        uuid="%s-%s-4%s-a%s-%s" % (rs("0123456789abcdef", 8), rs("0123456789abcdef", 4), rs("0123456789abcdef", 3),
                                   rs("0123456789abcdef", 3), rs("0123456789abcdef", 12)),
        b64=base64.b64encode(bytes(R.getrandbits(8) for _ in range(36))).decode(),
        badluhn=bad_luhn(),
        d6=rs(DI, 6),
    )


def bad_luhn():
    while True:
        n = R.choice("3456") + rs(DI, 15)
        if not luhn_ok(n):
            return n


def split_of(index):
    return "dev" if index % 2 == 0 else "test"


def record(split, typ, family, fmt, lang, text, values):
    for v in values:
        assert v["value"] in text, (text, v)
    return {"split": split, "type": typ, "family": family, "format": fmt, "lang": lang, "text": text,
            "values": values}


def main():
    out = {"dev": [], "test": []}
    secret_gens = {
        "aws_access_key": v_aws_access, "github_token": v_github, "openai_key": v_openai,
        "anthropic_key": v_anthropic, "slack_token": v_slack, "stripe_key": v_stripe,
        "google_api_key": v_google, "jwt": v_jwt,
    }
    pii_gens = {"email": v_email, "payment_card": v_card, "us_ssn": v_ssn, "iban": v_iban, "phone": v_phone,
                "ipv4": v_ipv4}

    def frames_for(frames, split):
        return [f for i, f in enumerate(frames) if split_of(i) == split]

    for split in ("dev", "test"):
        recs = out[split]
        for typ, gen in secret_gens.items():
            frames = frames_for(SECRET_FRAMES, split) + frames_for(GENERIC, split)
            for _ in range(40):
                fmt, lang, t = R.choice(frames)
                v = gen()
                recs.append(record(split, typ, typ, fmt, lang, t.format(v=v), [{"type": typ, "value": v}]))
        # AWS secret keys only count next to their name.
        for _ in range(30):
            v = v_aws_secret()
            fmt, lang, t = R.choice(frames_for([
                ("config", "en", "AWS_SECRET_ACCESS_KEY={v}"),
                ("config", "en", "aws_secret_access_key = {v}"),
                ("json", "en", '{{"AccessKeyId": "AKIAEXAMPLE", "aws_secret_access_key": "{v}"}}'),
                ("config", "en", "[default]\naws_secret_access_key={v}\nregion=eu-west-1"),
            ], split))
            recs.append(record(split, "aws_secret_key", "aws_secret_key", fmt, lang, t.format(v=v),
                               [{"type": "aws_secret_key", "value": v}]))
        for _ in range(30):
            v = v_private_key()
            fmt, lang, t = R.choice(frames_for([
                ("prose", "en", "Here is the key:\n{v}\nKeep it safe."),
                ("config", "en", "tls:\n  key: |\n{v}"),
                ("prose", "de", "Der Schlüssel:\n{v}"),
                ("code", "en", 'KEY = """{v}"""'),
            ], split))
            recs.append(record(split, "private_key", "private_key", fmt, lang, t.format(v=v),
                               [{"type": "private_key", "value": v}]))
        for _ in range(60):
            fi = R.randrange(len(CONFIG_FRAMES))
            while split_of(fi) != split:
                fi = R.randrange(len(CONFIG_FRAMES))
            fmt, lang, t = CONFIG_FRAMES[fi]
            quoted = fi in CONFIG_QUOTED
            v = v_password(quoted=quoted)
            if fmt == "json":
                v = v.replace("\\", "").replace('"', "")
            if quoted:
                v = v.replace('"', "").replace("'", "")
            k = R.choice(CONFIG_KEYS)
            recs.append(record(split, "password", "config", fmt, lang, t.format(k=k, v=v),
                               [{"type": "password", "value": v}]))
        for _ in range(50):
            scheme = R.choice(["postgres", "postgresql", "mysql", "mongodb", "mongodb+srv", "redis", "rediss",
                               "amqp", "amqps", "https", "ftp", "smtp", "ldap"])
            user = R.choice(["app", "admin", "svc_user", "deploy", "", "root", "j.doe"])
            pw = v_url_password()
            host = R.choice(["db.internal.example.com", "cache.example.net", "mq.prod.example.org", "localhost",
                             "cluster0.ab1cd.mongodb.net"])
            port = R.choice(["", ":5432", ":6379", ":5672", ":27017"])
            url = "%s://%s:%s@%s%s/%s" % (scheme, user, pw, host, port, R.choice(["app", "0", "vhost", ""]))
            fmt, lang, t = R.choice(frames_for(URL_FRAMES, split))
            recs.append(record(split, "password", "url", fmt, lang, t.format(v=url),
                               [{"type": "password", "value": pw}]))
        for _ in range(60):
            v = v_password(prose=True)
            fmt, lang, t = R.choice(frames_for(PROSE_PW_FRAMES, split))
            recs.append(record(split, "password", "prose", fmt, lang, t.format(v=v),
                               [{"type": "password", "value": v}]))
        for typ, gen in pii_gens.items():
            frames = frames_for(PER_TYPE[typ], split) + frames_for(GENERIC, split)
            for _ in range(60 if typ == "phone" else 45):
                fmt, lang, t = R.choice(frames)
                v = gen()
                recs.append(record(split, typ, typ, fmt, lang, t.format(v=v), [{"type": typ, "value": v}]))
        negs = frames_for(NEGATIVES, split)
        for _ in range(170):
            t = R.choice(negs)
            lang = next((l for p, l in NEG_LANG.items() if t.startswith(p)), "en")
            recs.append(record(split, "negative", "near_miss", "prose", lang, fill_negative(t), []))
        # Plain filler with no value at all, in several languages.
        fillers = frames_for([
            "The quarterly report shows revenue growth of 12 percent.",
            "Der Bericht zeigt ein Wachstum von 12 Prozent im dritten Quartal.",
            "Le rapport montre une croissance de 12 % au troisième trimestre.",
            "El informe muestra un crecimiento del 12 % en el tercer trimestre.",
            "报告显示第三季度增长了百分之十二。",
            "def add(a, b):\n    return a + b  # see issue 42",
            "server:\n  port: 8080\n  workers: 4\n  timeout_s: 30",
            "2024-05-01T12:00:00Z INFO cache warmed entries=10240 took_ms=317",
        ], split)
        for _ in range(40):
            recs.append(record(split, "negative", "plain", "prose", "mixed", R.choice(fillers), []))
        for i, r in enumerate(recs):
            r["id"] = "%s-%04d" % (split, i)
    for split, recs in out.items():
        with open(os.path.join(HERE, split + ".jsonl"), "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps({"id": r.pop("id"), **r}, ensure_ascii=False) + "\n")
        print(split, len(recs))


if __name__ == "__main__":
    main()
