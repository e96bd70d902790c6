# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tablesync developers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The store and endpoint options shared by every module of the collection."""

    DOCUMENTATION = r"""
requirements:
  - SQLAlchemy >= 2.0
  - jsonschema >= 4.17
  - odata-query >= 0.10 (with sly and python-dateutil, which it brings)
  - psycopg >= 3.1 (PostgreSQL endpoints and stores)
  - PyMySQL >= 1.1 (MySQL/MariaDB endpoints)
  - requests >= 2.31 (Dataverse, Business Central and OData endpoints)
options:
  store:
    description:
      - Where mappings, couplings, watermarks and the job log are kept.
      - A path to a SQLite file (the embedded default, created on first use), or a database URL
        such as V(postgresql://sync@db.example.com/tablesync) for a store shared by several controllers.
      - The store never holds passwords or client secrets.
      - A PostgreSQL store is created on first use and migrated when an older version of the collection
        created it; a store created by a newer version is refused.
      - The store records the type and address of the two endpoints it serves, and refuses another pair
        (see the C(rebind) option of M(tablesync.integration.sync)).
    type: str
    default: ~/.tablesync/store.sqlite
  store_password:
    description:
      - Password of a PostgreSQL store, so that it stays out of O(store). A password written in the URL works
        too; it is masked (V(********)) wherever Ansible shows the URL, but it is still in the playbook.
    type: str
  local:
    description:
      - The local side (the ERP), as a dictionary. Set it once per play with
        C(module_defaults) and the C(group/tablesync.integration.integration) action group.
    type: dict
    suboptions: &endpoint
      type:
        description: Endpoint type.
        type: str
        required: true
        choices: [sqlite, postgresql, mysql, dataverse, business_central, odata]
      path:
        description: SQLite database file, for C(type=sqlite).
        type: path
      url:
        description:
          - Database URL (SQLAlchemy form, for example V(postgresql://user@host/db)) or the service root of a web endpoint,
            V(https://<org>.crm.dynamics.com/api/data/v9.2/) for Dataverse,
            V(https://api.businesscentral.dynamics.com/v2.0/<tenant>/<environment>/api/v2.0/) for Business Central.
          - A password written in the URL is masked (V(********)) wherever Ansible shows the URL; prefer C(password).
        type: str
      host:
        description: Database server host name.
        type: str
      port:
        description: Database server port.
        type: int
      database:
        description: Database name.
        type: str
      user:
        description:
          - Database user.
          - For a web endpoint, the user of HTTP Basic authentication (SAP CAP and many OData v4 services, Business
            Central on-premises with a web service access key). Exclusive with O(local.token) and O(local.client_id).
        type: str
      password:
        description:
          - Database password, or the HTTP Basic password of a web endpoint with O(local.user).
          - Never written to the store, the job log, any output or error message.
        type: str
      schema:
        description: Database schema for table names given without one.
        type: str
      connect_options:
        description:
          - Extra driver options passed in the connection URL query, for example C(connect_timeout) or
            C(application_name) for PostgreSQL.
        type: dict
      sslmode:
        description:
          - TLS for endpoints whose C(type) is V(postgresql) or V(mysql), with libpq's meaning.
          - For MySQL/MariaDB, V(require), V(verify-ca) and V(verify-full) make a connection that did not
            negotiate TLS fail; V(allow) and V(prefer) connect without TLS.
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      ssl_ca:
        description: CA certificate file that verifies the server (V(verify-ca), V(verify-full)).
        type: path
      ssl_cert:
        description: Client certificate file.
        type: path
      ssl_key:
        description: Client private key file.
        type: path
      tenant_id:
        description:
          - Microsoft Entra tenant of a web endpoint, for the OAuth2 client credentials grant.
        type: str
      client_id:
        description: Application (client) id for the OAuth2 client credentials grant.
        type: str
      client_secret:
        description:
          - Client secret for the OAuth2 client credentials grant. Never written to the store, the job log or any output.
        type: str
      token:
        description:
          - A static bearer token used instead of client credentials (tests, authenticating proxies). It is not renewed.
          - A web endpoint authenticates with one of O(local.token), OAuth2 client credentials (O(local.client_id)) or
            HTTP Basic (O(local.user)); an O(local.type=odata) endpoint with none of them sends no credentials
            (except O(local.api_key)).
        type: str
      scope:
        description:
          - OAuth2 scope. Derived by default, V(https://<org>.crm.dynamics.com/.default) from the endpoint's C(url) when its
            C(type) is V(dataverse), V(https://api.businesscentral.dynamics.com/.default) when it is V(business_central).
          - Required for an endpoint of C(type) V(odata) with client credentials.
        type: str
      authority:
        description:
          - Identity platform host; the token is requested from C(<authority>/<tenant_id>/oauth2/v2.0/token).
          - Defaults to V(https://login.microsoftonline.com).
        type: str
      token_url:
        description: Full token endpoint URL, overriding the endpoint's C(authority) and C(tenant_id).
        type: str
      api_key:
        description:
          - An API key sent in the O(local.api_key_header) header of every API request of a web endpoint (API gateways,
            SAP API Business Hub). It can be combined with any other authentication, or used alone.
          - Never written to the store, the job log, any output or error message.
        type: str
      api_key_header:
        description:
          - The header that carries O(local.api_key), for example V(APIKey) or V(Ocp-Apim-Subscription-Key).
          - Defaults to V(X-API-Key).
        type: str
      company:
        description:
          - Business Central company name or id. Needed when the environment has more than one company.
        type: str
      validate_certs:
        description:
          - Verify the service's TLS certificate. On unless set to V(false).
          - This option decides whatever C(REQUESTS_CA_BUNDLE) or C(CURL_CA_BUNDLE) say in the environment; without
            O(local.ca_bundle), a certificate is verified against the trust store of the Python C(requests) library
            (C(certifi)), or the bundle C(REQUESTS_CA_BUNDLE) names when it is set.
          - A certificate that is not accepted fails the request at once, with a message that says so; it is not retried.
        type: bool
      ca_bundle:
        description:
          - A PEM file of CA certificates that signed the service's TLS certificate (a private or corporate CA).
          - It extends the trust store, it does not replace it. The system trust store and the one of the Python
            C(requests) library stay trusted, so a public token endpoint (V(https://login.microsoftonline.com)) is still
            reachable. C(REQUESTS_CA_BUNDLE) in the environment does not override it.
          - Ignored with O(local.validate_certs=false).
        type: path
      page_size:
        description:
          - Records per page asked of a web service with C(Prefer odata.maxpagesize); Dataverse allows at most 5000.
        type: int
      batch_size:
        description:
          - Operations per write request of a web endpoint; at most 1000 for Dataverse (C($batch), C(CreateMultiple)),
            100 for Business Central.
        type: int
      bulk_operations:
        description:
          - Dataverse only. Write with C(CreateMultiple) and C(UpdateMultiple) (default); a request the service refuses
            falls back to a C($batch) in which each refused record fails alone.
        type: bool
      timeout:
        description: Seconds to wait for one HTTP response of a web endpoint (default 60).
        type: float
      max_retry_seconds:
        description:
          - Longest time one web request is retried after throttling (429, honouring C(Retry-After)), 5xx or a
            dropped connection (default 300).
        type: float
      max_parallel_requests:
        description:
          - Web endpoints. The most write requests (batches) in flight at once; the pages of a sync are written with up to
            this many concurrent requests, and their results are committed as with one.
          - Defaults to the number Dataverse asks for in its C(x-ms-dop-hint) response header (at most 52, its limit of
            concurrent requests per user), 5 for Business Central (its limit per user) and 1 for other OData services.
          - A 429 answer pauses every request of the endpoint for the whole C(Retry-After) (seconds or an HTTP date) and
            halves the number in flight, which grows back by one at a time; Dataverse's
            C(x-ms-ratelimit-burst-remaining-xrm-requests) header lowers it when the service protection window runs low.
          - The client counts each 5-minute service protection window itself (Dataverse 6,000 requests and 1,200 seconds
            of execution time per user, Business Central 6,000 requests) and holds the next request back until the window
            has room, or as long as Dataverse's C(x-ms-ratelimit-*) headers report less left, so a long run waits instead
            of being refused.
          - Each job reports its 429 answers (C(throttled)) and the seconds waited for either (C(throttle_wait)).
        type: int
      lookups:
        description:
          - "Dataverse lookup columns, by C(<entity set>.<lookup attribute>), mapped to the navigation property and
            target entity set used to write them with C(@odata.bind), for lookups with several targets or a polymorphic
            target such as C(ownerid), for example
            C({contacts.parentcustomerid: {navigation: parentcustomerid_account, entity_set: accounts}})."
          - A lookup column reads as its attribute name (C(parentcustomerid)) holding the GUID of the referenced record.
        type: dict
  integration:
    description:
      - The integration side (the CRM), as a dictionary with the same keys as O(local).
    type: dict
    suboptions: *endpoint
  lock_timeout:
    description:
      - Seconds to wait for a mapping that another run is synchronising (or declaring) before failing
        with a message that names the mapping and the run holding it.
      - Runs on disjoint sets of mappings proceed in parallel; a run killed while holding a lock
        releases it. A PostgreSQL store uses advisory locks of the run's session, a SQLite store
        file locks next to the store file (which protect runs on one machine).
    type: float
    default: 300
"""
