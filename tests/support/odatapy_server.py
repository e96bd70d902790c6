"""A real OData v4 server for the generic ``odata`` endpoint: odatapy's in-memory service
(a pure-Python OData v4.0/4.01 implementation, from PyPI) served by wsgiref on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from odatapy.edm.csdl import (
    CsdlAbstractEdmProvider,
    CsdlEntityContainer,
    CsdlEntitySet,
    CsdlEntityType,
    CsdlProperty,
    CsdlPropertyRef,
    CsdlSchema,
)
from odatapy.server import OData
from odatapy.server.adapters import ODataWSGIApp
from odatapy.server.inmemory import InMemoryDataStore, InMemoryProcessor

NAMESPACE = "Sync"


class _Provider(CsdlAbstractEdmProvider):
    def get_schemas(self):
        def entity(name: str, props: list) -> CsdlEntityType:
            return CsdlEntityType(name=name, key=[CsdlPropertyRef(name="ID")],
                                  properties=[CsdlProperty(name="ID", type="Edm.Guid", nullable=False), *props])

        customer = entity("Customer", [
            CsdlProperty(name="Number", type="Edm.String", max_length=20),
            CsdlProperty(name="Name", type="Edm.String", max_length=100),
            CsdlProperty(name="City", type="Edm.String", max_length=30),
            CsdlProperty(name="CreditLimit", type="Edm.Decimal", precision=18, scale=2),
            CsdlProperty(name="Blocked", type="Edm.Boolean"),
            CsdlProperty(name="ModifiedAt", type="Edm.DateTimeOffset"),
        ])
        # a text key, as SAP CAP and many ERPs use (a code such as C#0005)
        code = CsdlEntityType(name="Code", key=[CsdlPropertyRef(name="Code")],
                              properties=[CsdlProperty(name="Code", type="Edm.String", nullable=False, max_length=20),
                                          CsdlProperty(name="Name", type="Edm.String", max_length=100)])
        container = CsdlEntityContainer(name="Container", entity_sets=[CsdlEntitySet(name="Customers", type=NAMESPACE + ".Customer"),
                                                                       CsdlEntitySet(name="Codes", type=NAMESPACE + ".Code")])
        return [CsdlSchema(namespace=NAMESPACE, entity_types=[customer, code], entity_container=container)]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:  # noqa: D102 - keep test output clean
        pass

    def get_environ(self) -> dict:
        environ = super().get_environ()
        # why: odatapy reads the still-encoded path from REQUEST_URI; without it, it decodes wsgiref's decoded PATH_INFO again
        environ["REQUEST_URI"] = self.path
        return environ


class ODataV4Server:
    """``with ODataV4Server() as srv: srv.url`` -> ``http://127.0.0.1:<port>/odata/``.

    ``basic=(user, password)`` puts the service behind HTTP Basic authentication (RFC 7617), and
    ``api_key=(header, value)`` behind an API key header, as SAP CAP services and API gateways are:
    a request without them gets 401 with a ``WWW-Authenticate`` challenge.
    """

    def __init__(self, basic: tuple[str, str] | None = None, api_key: tuple[str, str] | None = None) -> None:
        self.basic = basic
        self.api_key = api_key
        self.refused = 0
        odata = OData.new_instance()
        handler = odata.create_handler(odata.create_service_metadata(_Provider()))
        self.store = InMemoryDataStore()
        self.store.set_entities("Customers", [])
        self.store.set_entities("Codes", [])
        handler.register(InMemoryProcessor(self.store))
        self.app = ODataWSGIApp(handler)
        self._server = None
        self._thread = None

    def _wsgi(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/odata"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        if not self._authenticated(environ):
            self.refused += 1
            start_response("401 Unauthorized", [("Content-Type", "application/json"), ("WWW-Authenticate", 'Basic realm="odata", charset="UTF-8"')])
            return [json.dumps({"error": {"code": "401", "message": "Unauthorized"}}).encode()]
        environ["SCRIPT_NAME"] = "/odata"
        environ["PATH_INFO"] = path[len("/odata"):] or "/"
        return self.app(environ, start_response)

    def _authenticated(self, environ: dict) -> bool:
        if self.api_key and environ.get("HTTP_" + self.api_key[0].upper().replace("-", "_")) != self.api_key[1]:
            return False
        if self.basic:
            expected = "Basic " + base64.b64encode(("%s:%s" % self.basic).encode()).decode()
            return environ.get("HTTP_AUTHORIZATION") == expected
        return True

    def start(self) -> ODataV4Server:
        self._server = make_server("127.0.0.1", 0, self._wsgi, server_class=_Server, handler_class=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d/odata/" % self._server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> ODataV4Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
