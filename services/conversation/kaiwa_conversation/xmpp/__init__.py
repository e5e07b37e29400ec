"""CMD-02: the XMPP (Jabber) bridge, a gateway process of its own (`python -m
kaiwa_conversation.xmpp`): an XMPP component (XEP-0114) of a real XMPP server that
authenticates agents through the bridge (prosody/mod_auth_kaiwa.lua -> auth_http.py ->
routing's VerifyAgentLogin), and relays between agents' XMPP clients and Kaiwa's gRPC
APIs. It stores nothing: every state it shows lives in the services. See bridge.py."""
