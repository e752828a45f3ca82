"""The people, devices and event vocabulary behind ``sandbox.generate``, built once per run.

Values imitate what real exports carry (see ``tests/data/amplitude_export_rows.jsonl``): web
devices report the browser in ``os_name``/``os_version`` and the operating system in
``device_family``; iOS device ids are upper-case; Android ids sometimes end in ``R``; Segment
sends ``ajs-…`` insert ids and ``$schema: 12``; group properties are ``{type: {key: {props}}}``.
"""

from __future__ import annotations

import random
import uuid
from typing import NamedTuple

# Every column of a real export row, in the order the Export API writes them (sorted).
COLUMNS = (
    "$insert_id", "$insert_key", "$schema", "adid", "amplitude_attribution_ids",
    "amplitude_event_type", "amplitude_id", "app", "city", "client_event_time",
    "client_upload_time", "country", "data", "data_type", "device_brand", "device_carrier",
    "device_family", "device_id", "device_manufacturer", "device_model", "device_type", "dma",
    "event_id", "event_properties", "event_time", "event_type", "global_user_properties",
    "group_properties", "groups", "idfa", "ip_address", "is_attribution_event", "language",
    "library", "location_lat", "location_lng", "os_name", "os_version", "partner_id", "paying",
    "plan", "platform", "processed_time", "region", "sample_rate", "server_received_time",
    "server_upload_time", "session_id", "source_id", "start_version", "user_creation_time",
    "user_id", "user_properties", "uuid", "version_name",
)

APP_ID = 187520
HOUR_US = 3_600_000_000
ANON_DEVICE_SHARE = 0.25  # devices nobody ever logged in on
SHARED_DEVICE_SHARE = 0.04  # identified devices a second user also logged in on

# (city, region, country, dma); IP addresses come from the documentation ranges (RFC 5737).
_PLACES = (
    ("St. John's", "Newfoundland and Labrador", "Canada", None),
    ("Grand Blanc", "Michigan", "United States", "Flint-Saginaw-Bay City, MI"),
    ("Austin", "Texas", "United States", "Austin, TX"),
    ("Brooklyn", "New York", "United States", "New York, NY"),
    ("Lyon", "Auvergne-Rhone-Alpes", "France", None),
    ("Berlin", "Land Berlin", "Germany", None),
    ("Puchong Batu Dua Belas", "Selangor", "Malaysia", None),
    ("Sao Paulo", "Sao Paulo", "Brazil", None),
    ("Bengaluru", "Karnataka", "India", None),
    ("Osaka", "Osaka", "Japan", None),
)
_IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")
_LANGUAGES = ("English", "English", "English", "French", "German", "Portuguese", "Japanese")
_BROWSERS = (("Chrome", ("120", "121", "122", "86")), ("Safari", ("17.2", "16.6")),
             ("Firefox", ("121", "115")), ("Edge", ("120",)))
_DESKTOPS = (("Windows", "Windows"), ("Mac OS", "Mac OS"), ("Linux", "Linux"),
             ("iOS", "Apple iPhone"), ("Android", "Android"))
_IPHONES = (("iPhone15,2", "Apple iPhone 14 Pro"), ("iPhone14,5", "Apple iPhone 13"),
            ("iPhone16,1", "Apple iPhone 15 Pro"), ("iPad13,1", "Apple iPad Air"))
_ANDROIDS = (("samsung", "SM-S918B", "Samsung Galaxy S23 Ultra"),
             ("Google", "Pixel 8", "Google Pixel 8"),
             ("Xiaomi", "2201117TY", "Xiaomi Redmi Note 11"), ("OnePlus", "CPH2449", "OnePlus 11"))
_CARRIERS = ("T-Mobile", "Verizon", "Orange F", "Vodafone.de", "Maxis", "Unknown", None)
_APP_VERSIONS = ("2.3.0", "2.3.1", "2.4.0", "2.5.2", "3.0.0")
_SOURCES = ("google", "newsletter", "facebook", "EMPTY", "EMPTY", "EMPTY")
_PLANS = ("free", "trial", "pro", "business")
_CATEGORIES = ("shoes", "books", "garden", "kitchen", "outdoor", "toys", "music")
_PAGES = ("/", "/pricing", "/blog/how-we-migrated", "/docs/getting-started", "/signup", "/login",
          "/products/trail-runner-2", "/products/kettle-pro", "/cart", "/checkout", "/account",
          "/search", "/careers", "/about", "/blog/spring-sale", "/help/shipping")
_REFERRERS = (("https://www.google.com/", "www.google.com"),
              ("https://news.ycombinator.com/", "news.ycombinator.com"),
              ("https://t.co/", "t.co"), ("EMPTY", "EMPTY"))
_SESSION_EVENTS = ("session_start", "session_end", "[Amplitude] Start Session")


def _weighted(pairs: tuple) -> tuple:
    """Names repeated by weight, so that a uniform pick is a weighted one."""
    return tuple(name for name, weight in pairs for _ in range(weight))


WEB_EVENTS = _weighted((
    ("[Amplitude] Page Viewed", 40), ("[Amplitude] Element Clicked", 14),
    ("[Amplitude] Element Changed", 3), ("[Amplitude] Form Started", 3),
    ("[Amplitude] Start Session", 6), ("Searched", 6), ("Viewed Product", 10),
    ("Added to Cart", 6), ("Checkout Completed", 3), ("Signed Up", 2), ("Clicked CTA", 7)))
MOBILE_EVENTS = _weighted((
    ("session_start", 8), ("session_end", 8), ("[Amplitude] Application Opened", 6),
    ("[Amplitude] Application Backgrounded", 4), ("Screen: Home", 16), ("Screen: Product", 12),
    ("Viewed Product", 12), ("Added to Cart", 8), ("Purchase Completed", 4), ("Push Opened", 3),
    ("Searched", 6)))
SERVER_EVENTS = _weighted((
    ("Order Shipped", 5), ("Subscription Renewed", 3), ("Invoice Paid", 4), ("Refund Issued", 1),
    ("Email Delivered", 6)))

_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def random_uuid(rng: random.Random, upper: bool = False) -> str:
    """A version-4 UUID drawn from ``rng`` (so that runs repeat); ``uuid.UUID()`` is slower."""
    h = "%032x" % (rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET)
    text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return text.upper() if upper else text


class User(NamedTuple):
    user_id: str
    amplitude_id: int
    created_us: int | None
    stages: tuple  # ((from_us, user_properties), ...) ascending: values change over time
    groups: dict
    group_properties: dict
    data: tuple  # the ``data`` column without and with ``user_properties_updated``
    server_device_id: str  # what a backend sending through the HTTP API uses as device_id


class Device(NamedTuple):
    kind: str  # "web", "ios" or "android"
    template: dict  # a full row: every column, this device's static values set
    users: tuple  # of User; empty for a device nobody logged in on
    initial: dict  # the device's initial_* user properties (what anonymous web rows carry)
    events: tuple  # event names, repeated by weight
    insert_style: str  # how this device's SDK builds $insert_id
    session_offset_ms: int


class Population:
    """Users, devices and per-event property sets for one generator run."""

    def __init__(self, rng: random.Random, n_devices: int, first_us: int, range_us: int):
        self.rng = rng
        self.first_us = first_us
        self.range_us = range_us
        self.users: list[User] = []
        self.devices = [self._device() for _ in range(n_devices)]
        self.properties = self._property_pools()

    def _initial(self) -> dict:
        rng = self.rng
        referrer, domain = rng.choice(_REFERRERS)
        source = rng.choice(_SOURCES)
        paid = source != "EMPTY"
        return {
            "initial_referrer": referrer,
            "initial_referring_domain": domain,
            "initial_utm_source": source,
            "initial_utm_medium": rng.choice(("cpc", "email", "social")) if paid else "EMPTY",
            "initial_utm_campaign": rng.choice(("spring_sale", "launch")) if paid else "EMPTY",
            "initial_utm_content": "EMPTY",
            "initial_gclid": "EMPTY",
            "initial_fbclid": "EMPTY",
        }

    def _user(self, initial: dict) -> User:
        rng = self.rng
        number = len(self.users)
        user_id = random_uuid(rng) if rng.random() < 0.7 else f"user_{number:06d}"
        # One to three stages of properties; later ones start inside the range, so a user's
        # plan and order count change while the export goes on.
        starts = [self.first_us - HOUR_US * 24 * 365] + sorted(
            self.first_us + int(rng.random() * self.range_us) for _ in range(rng.randrange(3)))
        plan = rng.randrange(2)
        stages = []
        for index, from_us in enumerate(starts):
            props = dict(initial)
            props.update({
                "email": f"customer{number}@example.com",
                "name": f"Customer {number}",
                "plan": _PLANS[min(plan + index, len(_PLANS) - 1)],
                "orders_count": index * 3 + rng.randrange(3),
                "favorite_category": rng.choice(_CATEGORIES),
                "newsletter": rng.random() < 0.5,
            })
            stages.append((from_us, props))
        groups: dict = {}
        group_properties: dict = {}
        group_ids: dict = {}
        if rng.random() < 0.4:  # {type: key}
            org = f"org-{rng.randrange(400):04d}"
            groups["company"] = org
            group_properties["company"] = {org: {
                "name": f"Company {org[4:]}", "seats": rng.randrange(2, 400),
                "industry": rng.choice(("retail", "media", "fintech"))}}
            group_ids["4127"] = [rng.getrandbits(31)]
        if rng.random() < 0.15:  # {type: [keys]}
            teams = sorted({f"team-{rng.randrange(60)}" for _ in range(rng.randrange(1, 4))})
            groups["team"] = teams
            group_properties["team"] = {team: {} for team in teams}
            group_ids["4128"] = [rng.getrandbits(31) for _ in teams]
        created_us = self.first_us - int(rng.random() * 400 * 86_400_000_000)
        data = tuple({"path": "/2/httpapi", "user_properties_updated": updated,
                      "group_first_event": {}, "group_ids": group_ids} for updated in (False, True))
        user = User(user_id, rng.getrandbits(40), created_us if rng.random() < 0.8 else None,
                    tuple(stages), groups, group_properties, data,
                    str(uuid.uuid5(uuid.NAMESPACE_URL, f"server/{user_id}")))
        self.users.append(user)
        return user

    def _device(self) -> Device:
        rng = self.rng
        city, region, country, dma = rng.choice(_PLACES)
        template = dict.fromkeys(COLUMNS)
        template.update({
            "app": APP_ID, "city": city, "region": region, "country": country, "dma": dma,
            "ip_address": f"{rng.choice(_IP_PREFIXES)}{rng.randrange(1, 255)}",
            "language": rng.choice(_LANGUAGES), "data_type": "event", "plan": {},
            "amplitude_id": rng.getrandbits(40),
        })
        roll = rng.random()
        if roll < 0.55:
            kind, events = "web", WEB_EVENTS
            browser, versions = rng.choice(_BROWSERS)
            family, device_type = rng.choice(_DESKTOPS)
            segment = rng.random() < 0.4
            insert_style = "segment" if segment else "uuid"
            template.update({
                "device_id": random_uuid(rng), "os_name": browser,
                "os_version": rng.choice(versions), "device_family": family,
                "device_type": device_type, "device_model": family, "platform": "Web",
                "library": "segment" if segment else "amplitude-ts/2.11.1",
                "$schema": 12 if segment else None,
                "is_attribution_event": False if segment else None,
            })
        elif roll < 0.8:
            kind, events, insert_style = "ios", MOBILE_EVENTS, "upper_uuid"
            model, family = rng.choice(_IPHONES)
            template.update({
                "device_id": random_uuid(rng, upper=True), "os_name": "ios",
                "os_version": rng.choice(("17.4", "17.5.1", "18.5")), "device_family": family,
                "device_model": model, "device_manufacturer": "Apple",
                "device_carrier": rng.choice(_CARRIERS), "platform": "iOS",
                "library": "amplitude-swift/1.13.6",
                "amplitude_attribution_ids": [f"{rng.getrandbits(128):032x}"],
                "start_version": rng.choice(_APP_VERSIONS[:3]),
                "version_name": rng.choice(_APP_VERSIONS[2:]),
            })
        else:
            kind, events, insert_style = "android", MOBILE_EVENTS, "counter"
            brand, model, family = rng.choice(_ANDROIDS)
            template.update({
                "device_id": random_uuid(rng) + ("R" if rng.random() < 0.3 else ""),
                "os_name": "android", "os_version": rng.choice(("13", "14", "15")),
                "device_family": family, "device_model": model, "device_manufacturer": brand,
                "device_brand": brand.lower(), "device_carrier": rng.choice(_CARRIERS),
                "platform": "Android", "library": "amplitude-android-kotlin/1.16.7",
                "adid": random_uuid(rng) if rng.random() < 0.5 else None,
                "start_version": rng.choice(_APP_VERSIONS[:3]),
                "version_name": rng.choice(_APP_VERSIONS[2:]),
            })
        initial = self._initial()
        users: tuple = ()
        if rng.random() >= ANON_DEVICE_SHARE:
            users = (self._user(initial),)
            if len(self.users) > 1 and rng.random() < SHARED_DEVICE_SHARE:
                users += (self.users[rng.randrange(len(self.users) - 1)],)
        return Device(kind, template, users, initial, events, insert_style,
                      rng.randrange(1_800_000))

    def _property_pools(self) -> dict[str, tuple]:
        """Twelve property sets per event name; rows pick one. Rows come out at ~1-3 KB."""
        names = set(WEB_EVENTS) | set(MOBILE_EVENTS) | set(SERVER_EVENTS)
        return {name: tuple(self._properties(name) for _ in range(12)) for name in sorted(names)}

    def _properties(self, name: str) -> dict:
        rng = self.rng
        props: dict = {}
        if name.startswith(("[Amplitude] Page", "[Amplitude] Element", "[Amplitude] Form")):
            path = rng.choice(_PAGES)
            referrer, domain = rng.choice(_REFERRERS)
            query = f"?utm_source={rng.choice(_SOURCES)}" if rng.random() < 0.3 else ""
            title = path.strip("/").replace("/", " - ").title() or "Home"
            props.update({
                "[Amplitude] Page Domain": "shop.example.com",
                "[Amplitude] Page Location": f"https://shop.example.com{path}{query}",
                "[Amplitude] Page Path": path,
                "[Amplitude] Page Title": f"{title} | Example Shop",
                "[Amplitude] Page URL": f"https://shop.example.com{path}",
                "[Amplitude] Page Counter": rng.randrange(1, 12),
                "[Amplitude] Viewport Height": rng.choice((768, 900, 1080)),
                "[Amplitude] Viewport Width": rng.choice((1366, 1440, 1920)),
                "referrer": None if referrer == "EMPTY" else referrer,
                "referring_domain": None if domain == "EMPTY" else domain,
            })
            if name != "[Amplitude] Page Viewed":
                props.update({
                    "[Amplitude] Element Tag": rng.choice(("button", "a", "input")),
                    "[Amplitude] Element Text": rng.choice(("Buy now", "Sign up", "Next")),
                    "[Amplitude] Element Selector": "#main > div.card:nth-child(2) > button",
                })
        elif name.startswith("Screen"):
            props.update({"Previous Screen": rng.choice(("Home", "Search", "Cart")),
                          "Load Time Ms": rng.randrange(40, 900)})
        elif name not in _SESSION_EVENTS:
            items = [{
                "sku": f"SKU-{rng.randrange(10_000):05d}",
                "name": f"{rng.choice(_CATEGORIES).title()} item {rng.randrange(100)}",
                "price": round(rng.uniform(3, 300), 2), "quantity": rng.randrange(1, 4),
                "category": rng.choice(_CATEGORIES),
            } for _ in range(rng.randrange(0, 7))]
            props.update({
                "Currency": "USD",
                "Total Price": round(sum(item["price"] * item["quantity"] for item in items), 2),
                "Items": items, "Source": rng.choice(("web", "app", "email")),
            })
        if rng.random() < 0.3:
            props["Experiments"] = {f"exp_{rng.randrange(40)}": rng.choice(("control", "treatment"))
                                    for _ in range(rng.randrange(1, 8))}
        return props
