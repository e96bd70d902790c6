"""TLS of the web endpoints against the Dataverse test double served over HTTPS on 127.0.0.1, with
certificates made by a private CA in the test."""

from __future__ import annotations

import pytest
from requests.utils import DEFAULT_CA_BUNDLE_PATH

from ansible_collections.tablesync.integration.plugins.module_utils.endpoint_registry import open_endpoint
from ansible_collections.tablesync.integration.plugins.module_utils.errors import ConfigurationError, EndpointError
from ansible_collections.tablesync.integration.plugins.module_utils.http_client import ClientSettings, HttpClient
from tests.support import ODataService
from tests.support.tls import make_server_certificate
from tests.support.web_schemas import declare_dataverse, endpoint_options


@pytest.fixture
def certificates(tmp_path):
    return make_server_certificate(str(tmp_path), "private")


@pytest.fixture
def https(certificates):
    with ODataService("dataverse", tls=(certificates.cert, certificates.key)) as svc:
        declare_dataverse(svc)
        svc.insert("accounts", [{"name": "Over TLS"}])
        yield svc


def names(svc, **options):
    endpoint = open_endpoint("integration", endpoint_options(svc, max_retry_seconds=20, **options))
    try:
        return [r[1] for page in endpoint.table("accounts", "accountid").scan(["accountid", "name"]) for r in page]
    finally:
        endpoint.close()


def test_ca_bundle_decides_even_with_requests_ca_bundle_set(https, certificates, monkeypatch):
    assert https.url.startswith("https://")
    # an environment trust store without the private CA: requests would let it override a session's verify
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", DEFAULT_CA_BUNDLE_PATH)
    assert names(https, ca_bundle=certificates.ca) == ["Over TLS"]
    with pytest.raises(EndpointError, match="TLS certificate"):
        names(https)


def test_validate_certs_false_is_not_overridden_by_the_environment(https, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", DEFAULT_CA_BUNDLE_PATH)
    assert names(https, validate_certs=False) == ["Over TLS"]


def test_an_untrusted_certificate_fails_at_once_with_a_clear_message(https, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    endpoint = open_endpoint("integration", endpoint_options(https, max_retry_seconds=60))
    try:
        with pytest.raises(EndpointError) as raised:
            endpoint.table("accounts", "accountid")
        message = str(raised.value)
        assert "TLS certificate of %s was not accepted" % https.url in message
        assert "certificate" in message and "ca_bundle" in message
        assert endpoint.client.retries == 0  # never retried as a dropped connection
        assert https.request_counts() == {}  # the service never saw a request
    finally:
        endpoint.close()


def test_ca_bundle_extends_the_system_trust_store(https, certificates, tmp_path, monkeypatch):
    """A second service signed by another CA that only the system store trusts (OpenSSL reads SSL_CERT_FILE),
    as the public token endpoint of a service behind a private CA is, stays reachable."""
    public = make_server_certificate(str(tmp_path), "public")
    monkeypatch.setenv("SSL_CERT_FILE", public.ca)
    with ODataService("dataverse", tls=(public.cert, public.key)) as other:
        declare_dataverse(other)
        other.add_static_token("static")
        client = HttpClient(ClientSettings.from_options({"type": "dataverse", "url": https.api_root, "token": "static",
                                                         "ca_bundle": certificates.ca}, ""))
        try:
            assert client.request("GET", other.api_root + "accounts").status == 200
            assert client.request("GET", https.api_root + "$metadata").status in (200, 401)
        finally:
            client.close()


def test_an_unreadable_ca_bundle_is_a_configuration_error(https, tmp_path):
    bad = tmp_path / "not-a-bundle.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match="ca_bundle .* cannot be read"):
        open_endpoint("integration", endpoint_options(https, ca_bundle=str(bad)))
