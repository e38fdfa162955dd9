"""calo_addon/mitm.py leans on how mitmproxy works inside. Each test here checks one of those
assumptions against the installed mitmproxy, so an upgrade that moves one fails here, loudly,
before it fails a user."""

from __future__ import annotations

import inspect

from mitmproxy.addons import clientplayback, proxyserver, tlsconfig
from mitmproxy.net.http import http1
from mitmproxy.test import tflow, tutils

from calo_addon import mitm


def test_http1_writes_the_header_bytes_while_storage_reads_the_fields():
    request = tutils.treq()
    mitm.attach_secrets(request, {"x-goog-api-key": "REAL"}, "[calo: default#1]")
    head = http1.assemble_request_head(request)
    assert b"x-goog-api-key: REAL\r\n" in head
    stored = repr(request.get_state()) + repr(list(request.headers.items()))
    assert "REAL" not in stored and "[calo: default#1]" in stored
    request.headers["content-length"] = "3"  # edits after attaching keep the secret on the wire
    assert b"x-goog-api-key: REAL\r\n" in http1.assemble_request_head(request)


def test_a_copy_of_the_headers_sends_the_label_not_the_secret():
    """mitmproxy's h2 -> h1 conversion copies the request: the copy must not carry the secret
    (the upstream then refuses the label; nothing leaks)."""
    request = tutils.treq()
    mitm.attach_secrets(request, {"authorization": "Bearer REAL"}, "[calo: k]")
    assert b"REAL" not in http1.assemble_request_head(request.copy())


def test_attaching_again_replaces_the_label_and_the_secret():
    request = tutils.treq()
    mitm.attach_secrets(request, {"authorization": "Bearer ONE"}, "[calo: k#1]")
    mitm.attach_secrets(request, {"authorization": "Bearer TWO"}, "[calo: k#2]")
    assert request.headers.get_all("authorization") == ["[calo: k#2]"]
    assert b"Bearer TWO" in http1.assemble_request_head(request)
    assert b"ONE" not in http1.assemble_request_head(request)


def test_replay_handler_takes_a_flow_and_options_and_replays():
    params = list(inspect.signature(clientplayback.ReplayHandler.__init__).parameters)
    assert params[:3] == ["self", "flow", "options"]
    assert inspect.iscoroutinefunction(clientplayback.ReplayHandler.replay)
    assert "transports" in inspect.getsource(clientplayback.ReplayHandler)


def test_proxyserver_keeps_its_connection_handlers_by_client_id():
    assert "self.connections" in inspect.getsource(proxyserver.Proxyserver)


def test_client_alpn_set_before_the_handshake_is_what_tlsconfig_selects():
    assert "client_alpn = client.alpn" in inspect.getsource(tlsconfig.TlsConfig.tls_start_client)
    assert "if not server.alpn_offers" in inspect.getsource(tlsconfig.TlsConfig.tls_start_server)


def test_close_upstream_without_a_connection_is_false():
    from mitmproxy.test import taddons

    with taddons.context():
        assert mitm.close_upstream(tflow.tflow()) is False


def test_a_stream_callable_may_answer_a_list_and_b_empty_would_end_the_body():
    """mitm.never_empty: mitmproxy sends each item of a returned list, so [] sends nothing,
    while b"" becomes a zero-length chunk (the end of a chunked body)."""
    from mitmproxy.proxy.layers import http as http_layer
    from mitmproxy.proxy.layers.http import _http1

    streaming = inspect.getsource(http_layer.HttpStream.state_stream_response_body)
    assert "if isinstance(chunks, bytes):" in streaming and "for chunk in chunks:" in streaming
    assert 'b"%x\\r\\n%s\\r\\n" % (len(event.data), event.data)' in inspect.getsource(
        _http1.Http1Server.send
    )
    stream = mitm.never_empty(lambda chunk: chunk.upper())
    assert stream(b"") == [] and stream(b"ab") == [b"AB"]


def test_tcp_listeners_are_bound_in_one_method_share_listening_port_replaces():
    """mitm.share_listening_port (gemini-calo --workers) replaces AsyncioServerInstance.listen:
    it must still be the method that binds TCP listeners, with (host, port), by
    asyncio.start_server, and without reuse_port of its own."""
    from mitmproxy.proxy import mode_servers

    listen = mode_servers.AsyncioServerInstance.listen
    assert list(inspect.signature(listen).parameters) == ["self", "host", "port"]
    source = inspect.getsource(listen)
    assert "asyncio.start_server(self.handle_stream, host, port)" in source
    assert "reuse_port" not in inspect.getsource(mode_servers)
