"""Pure rules of the catalog: what is refused, and what counts as a material change."""

from __future__ import annotations

import ipaddress

import pytest

from portal.catalog.parsing import EndpointRules, parse_catalog
from portal.catalog.policy import CatalogError, Terms, is_material_change
from tests.factories import catalog_text, service_table, standard_catalog, system_table

# The registry is a parameter of the pure parser; these stand for it.
STORE_KEYS = ("reading_history", "saved_lists")

BASE = Terms(("own_use",), ("titles",), ("library",), 365)


def problems_of(text: str, locales: tuple[str, ...] = ("en",)) -> list[str]:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, locales, STORE_KEYS)
    return raised.value.problems


def test_valid_catalog_parses_every_service_and_notice() -> None:
    catalog = parse_catalog(standard_catalog(("en", "ar")), ("en", "ar"), STORE_KEYS)
    assert [s.key for s in catalog.services] == ["reading_history", "saved_lists", "newsletter"]
    assert set(catalog.services[0].notices) == {"en", "ar"}
    assert catalog.library_name == "Test Library"


def test_unknown_key_is_named() -> None:
    text = standard_catalog().replace('key = "newsletter"', 'key = "newsletter"\ncolour = "red"')
    assert "service 'newsletter': unknown key 'colour'" in problems_of(text)


def test_service_without_retention_is_refused() -> None:
    text = catalog_text(service_table("newsletter").replace("retention_days = 365\n", ""))
    assert any("'retention_days'" in p for p in problems_of(text))


def test_missing_notice_field_is_named() -> None:
    text = catalog_text(service_table("newsletter")).replace(
        'withdraw = "newsletter withdraw en"', ""
    )
    assert "service 'newsletter': notice.en is missing withdraw" in problems_of(text)


def test_notice_missing_in_an_enabled_locale_is_named() -> None:
    problems = problems_of(standard_catalog(("en", "es")), ("en", "es", "vi"))
    assert "service 'newsletter': notice missing in locale(s) vi" in problems


def test_unknown_store_is_refused() -> None:
    text = catalog_text(service_table("newsletter", store="everything"))
    assert any("unknown store 'everything'" in p for p in problems_of(text))


def test_two_services_cannot_share_a_store() -> None:
    text = catalog_text(
        service_table("a_history", store="reading_history"),
        service_table("b_history", store="reading_history"),
    )
    assert "store 'reading_history' belongs to more than one service" in problems_of(text)


def test_invalid_toml_is_reported_not_raised_raw() -> None:
    assert problems_of("[library\nname=")[0].startswith("the catalog is not valid TOML")


def test_toml_nested_thousands_deep_is_reported_not_raised_raw() -> None:
    assert problems_of("a = " + "[" * 100_000)[0].startswith("the catalog is not valid TOML")


@pytest.mark.parametrize("preset", ["[1]", "{ a = 1 }", "7"])
def test_a_preset_that_is_not_a_name_is_refused(preset: str) -> None:
    text = standard_catalog().replace('preset = "US"', f"preset = {preset}")
    assert any("unknown preset" in problem for problem in problems_of(text))


def test_empty_recipients_are_refused() -> None:
    text = catalog_text(service_table("newsletter", recipients=()))
    assert any("'recipients'" in p for p in problems_of(text))


@pytest.mark.parametrize(
    "changed",
    [
        Terms(("own_use", "marketing"), ("titles",), ("library",), 365),
        Terms(("own_use",), ("titles", "phone"), ("library",), 365),
        Terms(("own_use",), ("titles",), ("library", "Vendor Inc."), 365),
        Terms(("own_use",), ("titles",), ("library",), 366),
    ],
    ids=["new purpose", "new data", "new recipient", "longer retention"],
)
def test_material_changes(changed: Terms) -> None:
    assert is_material_change(BASE, changed)


@pytest.mark.parametrize(
    "changed",
    [
        BASE,
        Terms(("own_use",), ("titles",), ("library",), 30),
        Terms(("own_use",), ("titles",), (), 365),
    ],
    ids=["same", "shorter retention", "fewer recipients"],
)
def test_changes_that_ask_less_are_not_material(changed: Terms) -> None:
    assert not is_material_change(BASE, changed)


def test_connected_systems_are_declared_once_and_named_by_services() -> None:
    text = catalog_text(
        system_table("ils", "https://ils.library.example/privacy", name="Library system"),
        system_table("sms", "http://127.0.0.1:9000/hooks"),
        service_table("reading_history", store="reading_history", systems=("ils",)),
        service_table("sms_notices", systems=("sms", "ils")),
    )
    catalog = parse_catalog(text, ("en",), STORE_KEYS)
    assert [(s.key, s.name, s.endpoint) for s in catalog.systems] == [
        ("ils", "Library system", "https://ils.library.example/privacy"),
        ("sms", "SMS", "http://127.0.0.1:9000/hooks"),
    ]
    assert [s.systems for s in catalog.services] == [("ils",), ("sms", "ils")]


def test_a_service_naming_an_undeclared_system_is_refused() -> None:
    text = catalog_text(service_table("sms_notices", systems=("sms",)))
    assert problems_of(text) == [
        "service 'sms_notices': unknown system 'sms' (declare it as a [[system]])"
    ]


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ("http://ils.library.example/hooks", "must use https://"),
        ("ftp://ils.library.example/hooks", "must be an https:// URL"),
        ("https://user:pw@ils.library.example/hooks", "must not carry credentials"),
        ("https:///hooks", "must be an https:// URL"),
        ("https://ils.library.example:99999/", "is not a URL"),
    ],
)
def test_a_system_endpoint_is_https_except_to_this_machine(endpoint: str, problem: str) -> None:
    text = catalog_text(system_table("ils", endpoint), service_table("newsletter"))
    assert [p for p in problems_of(text) if problem in p], problems_of(text)


def test_a_system_needs_a_name_an_endpoint_and_one_declaration() -> None:
    text = catalog_text(
        '[[system]]\nkey = "ils"\n',
        system_table("sms", "https://sms.example/hooks"),
        system_table("sms", "https://sms.example/other"),
        service_table("newsletter"),
    )
    found = problems_of(text)
    assert any("system 'ils': needs a name" in p for p in found)
    assert any("system 'ils': needs an endpoint" in p for p in found)
    assert "system 'sms' is defined twice" in found


def test_library_name_per_locale_is_parsed() -> None:
    text = standard_catalog(("en", "ar")).replace(
        "[library]\n", '[library]\nname_in = { ar = " مكتبة الاختبار " }\n', 1
    )
    catalog = parse_catalog(text, ("en", "ar"), STORE_KEYS)
    assert catalog.library_names == {"ar": "مكتبة الاختبار"}
    assert catalog.library_name == "Test Library"


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('{ de = "Testbibliothek" }', "[library.name_in]: 'de' is not an enabled locale"),
        ('{ ar = "  " }', "[library.name_in]: ar needs a name (up to 200 characters)"),
        ('"Bibliothek"', "[library.name_in] must be a table of locale = name"),
    ],
)
def test_library_name_per_locale_is_checked_at_publish(table: str, problem: str) -> None:
    text = standard_catalog(("en", "ar")).replace(
        "[library]\n", f"[library]\nname_in = {table}\n", 1
    )
    assert problem in problems_of(text, ("en", "ar"))


def test_notices_under_the_old_tagalog_code_count_as_filipino() -> None:
    text = standard_catalog(("en", "tl"))
    catalog = parse_catalog(text, ("en", "fil"), STORE_KEYS)
    assert set(catalog.services[0].notices) == {"en", "fil"}


def test_a_notice_under_both_codes_is_refused() -> None:
    both = standard_catalog(("en", "fil")) + '\n[service.notice.tl]\ntitle = "x"\n'
    problems = problems_of(both, ("en", "fil"))
    assert "service 'newsletter': notice: 'tl' and 'fil' are the same locale; keep 'fil'" in (
        problems
    )


PRODUCTION = EndpointRules(development=False)


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",  # the cloud metadata service
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "127.0.0.1",
        "100.64.0.1",  # shared address space
        "0.0.0.0",  # noqa: S104 - an address to refuse, not one to bind
        "::1",
        "fd00::5",  # unique-local
        "fe80::1",  # link-local
        "::ffff:10.0.0.1",  # an IPv4 private address written as IPv6
        "224.0.0.1",
    ],
)
def test_an_endpoint_on_an_internal_address_is_refused_outside_development(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    endpoint = f"https://{host}:5432/hooks"
    refusal = PRODUCTION.refusal(endpoint, [ipaddress.ip_address(address)])
    assert refusal is not None
    assert "internal address" in refusal
    assert (
        EndpointRules(development=True).refusal(endpoint, [ipaddress.ip_address(address)]) is None
    )


def test_a_public_https_endpoint_is_allowed() -> None:
    assert (
        PRODUCTION.refusal("https://ils.example/h", [ipaddress.ip_address("93.184.216.34")]) is None
    )
    assert (
        PRODUCTION.refusal("https://ils.example/h", [ipaddress.ip_address("2606:4700::1")]) is None
    )


def test_a_name_resolving_to_one_internal_address_among_public_ones_is_refused() -> None:
    addresses = [ipaddress.ip_address(a) for a in ("93.184.216.34", "10.0.0.7")]
    assert PRODUCTION.refusal("https://ils.example/h", addresses) is not None


def test_plain_http_is_refused_outside_development_even_to_loopback() -> None:
    loopback = [ipaddress.ip_address("127.0.0.1")]
    refusal = PRODUCTION.refusal("http://127.0.0.1:22/", loopback)
    assert refusal is not None
    assert "https://" in refusal
    assert EndpointRules(development=True).refusal("http://127.0.0.1:22/", loopback) is None


def test_the_operator_can_name_internal_hosts_and_networks() -> None:
    rules = EndpointRules(development=False, allowed=("10.2.0.0/16", "relay.internal", "127.0.0.1"))
    assert rules.refusal("https://ils.internal/h", [ipaddress.ip_address("10.2.3.4")]) is None
    assert rules.refusal("https://ils.internal/h", [ipaddress.ip_address("10.3.0.1")]) is not None
    assert rules.refusal("https://relay.internal/h", [ipaddress.ip_address("10.9.9.9")]) is None
    assert rules.refusal("http://127.0.0.1:8080/h", [ipaddress.ip_address("127.0.0.1")]) is None
    assert rules.refusal("http://localhost:8080/h", [ipaddress.ip_address("127.0.0.1")]) is not None
