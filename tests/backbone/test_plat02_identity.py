"""PLAT-02 (foundation item 4): every RPC but health and reflection needs a valid JWT
(tenant, sub, role); a role outside the method's policy is refused; RS256 with a
configured public key works; `kaiwa token` mints a verifiable development token.
All through real gRPC calls on the test service (in-process, on a free port)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from kaiwa_common.app import ServiceRunner
from kaiwa_common.auth import AUDIENCE, mint_token, verify_token
from kaiwa_common.config import Settings
from tests.backbone.support import BackboneClient, rpc_code, unique
from tests.backbone.worker import SERVICE, build_spec

KAIWA_CLI = Path(sys.prefix) / "bin" / "kaiwa"


def _key_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def _bearer(token: str):
    return (("authorization", f"Bearer {token}"),)


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"tenant": "t-id", "sub": "agent-7", "role": "agent", "iat": now, "exp": now + 300, "aud": AUDIENCE}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.fixture(scope="module")
async def services(infra):
    """The test service twice: HS256 (the run's secret) and RS256 (a fresh key pair)."""
    private, public = _key_pair()
    schema, prefix = unique("bb_auth_"), unique("bb")
    hs = await ServiceRunner(build_spec(schema), Settings(subject_prefix=prefix), port=0).start()
    rs = await ServiceRunner(build_spec(schema), Settings(subject_prefix=prefix, jwt_public_key=public), port=0).start()
    try:
        yield {"hs": hs, "rs": rs, "private": private, "public": public}
    finally:
        await hs.stop(grace=1)
        await rs.stop(grace=1)
        conn = await asyncpg.connect(infra["database_url"])
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def hs_channel(services):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{services['hs'].port}") as channel:
        yield channel


@pytest.fixture
def hs_client(hs_channel):
    return BackboneClient(hs_channel)


async def _denied(call) -> tuple[grpc.StatusCode, str]:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details()
    raise AssertionError("the call should have been refused")


async def test_plat02_valid_token_carries_tenant_sub_and_role(hs_client):
    token = mint_token(Settings(), "t-acme", "agent", "agent-42")
    assert (await hs_client.whoami(_bearer(token))).value == "t-acme|agent-42|agent"
    service_token = mint_token(Settings(), "t-acme", "service", "routing")
    assert (await hs_client.whoami(_bearer(service_token))).value == "t-acme|routing|service"


async def test_plat02_missing_or_malformed_token_is_unauthenticated(hs_client):
    code, message = await _denied(hs_client.whoami(metadata=()))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "authorization" in message
    code, message = await _denied(hs_client.whoami(metadata=(("authorization", "Basic dXNlcjpwdw=="),)))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in message
    code, _ = await _denied(hs_client.whoami(metadata=(("authorization", "Bearer not-a-jwt"),)))
    assert code == grpc.StatusCode.UNAUTHENTICATED


async def test_plat02_bad_signature_expired_wrong_audience_are_unauthenticated(hs_client):
    secret = os.environ["KAIWA_JWT_SECRET"]
    cases = {
        "bad signature": jwt.encode(_claims(), "some-other-secret-of-sufficient-length!", algorithm="HS256"),
        "expired": jwt.encode(_claims(exp=int(time.time()) - 60), secret, algorithm="HS256"),
        "wrong audience": jwt.encode(_claims(aud="someone-else"), secret, algorithm="HS256"),
        "no audience": jwt.encode(_claims(aud=None), secret, algorithm="HS256"),
        "no tenant": jwt.encode(_claims(tenant=None), secret, algorithm="HS256"),
        "unknown role": jwt.encode(_claims(role="root"), secret, algorithm="HS256"),
        "no expiry": jwt.encode(_claims(exp=None), secret, algorithm="HS256"),
        "unsigned": jwt.encode(_claims(), None, algorithm="none"),
    }
    for case, token in cases.items():
        code, message = await _denied(hs_client.whoami(_bearer(token)))
        assert code == grpc.StatusCode.UNAUTHENTICATED, (case, code, message)
        assert message, case
    _, message = await _denied(hs_client.whoami(_bearer(cases["expired"])))
    assert "expired" in message


@pytest.mark.expected_error_logs("no access policy for method")
async def test_plat02_role_outside_policy_is_permission_denied(hs_channel, tenant):
    visitor = BackboneClient(hs_channel, _bearer(mint_token(Settings(), tenant, "visitor", "v-1")))
    code, message = await _denied(visitor.write("hello"))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "visitor" in message and "Write" in message
    # A method missing from the policy is refused for everyone, even an admin.
    admin = BackboneClient(hs_channel, _bearer(mint_token(Settings(), tenant, "admin", "a")))
    code, message = await _denied(admin.unlisted())
    assert code == grpc.StatusCode.PERMISSION_DENIED and "policy" in message


async def test_plat02_streaming_methods_are_guarded_too(hs_client, tenant):
    agent = _bearer(mint_token(Settings(), tenant, "agent", "a"))
    assert await hs_client.count(3, metadata=agent) == [0, 1, 2]
    assert await hs_client.count(3, countdown=True, metadata=agent) == [3, 2, 1]
    for countdown in (False, True):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hs_client.count(3, countdown=countdown, metadata=())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        visitor = _bearer(mint_token(Settings(), tenant, "visitor", "v"))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await hs_client.count(3, countdown=countdown, metadata=visitor)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_plat02_health_reflection_and_public_methods_need_no_token(hs_channel, hs_client):
    health = await health_pb2_grpc.HealthStub(hs_channel).Check(health_pb2.HealthCheckRequest(service=SERVICE))
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    call = reflection_pb2_grpc.ServerReflectionStub(hs_channel).ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    listed = [s.name async for reply in call for s in reply.list_services_response.service]
    assert SERVICE in listed
    assert await rpc_code(hs_client.ping()) == grpc.StatusCode.OK


async def test_plat02_rs256_with_configured_public_key(services, tenant):
    rs_settings = Settings(jwt_private_key=services["private"])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{services['rs'].port}") as channel:
        client = BackboneClient(channel)
        token = mint_token(rs_settings, tenant, "admin", "boss")
        assert jwt.get_unverified_header(token)["alg"] == "RS256"
        assert (await client.whoami(_bearer(token))).value == f"{tenant}|boss|admin"

        other_private, _ = _key_pair()
        forged = mint_token(Settings(jwt_private_key=other_private), tenant, "admin", "boss")
        hs_token = mint_token(Settings(), tenant, "admin", "boss")  # the shared secret is not accepted
        for token in (forged, hs_token):
            code, _ = await _denied(client.whoami(_bearer(token)))
            assert code == grpc.StatusCode.UNAUTHENTICATED


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KAIWA_JWT_")}
    return subprocess.run([str(KAIWA_CLI), *args], env={**base, **env}, capture_output=True, text=True, timeout=30)


async def test_plat02_kaiwa_token_cli_prints_only_a_verifiable_token(services, tenant):
    secret = os.environ["KAIWA_JWT_SECRET"]
    done = _cli("token", "--tenant", tenant, "--role", "agent", "--sub", "agent-9", KAIWA_JWT_SECRET=secret)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0] == done.stdout.strip()
    assert verify_token(Settings(), lines[0]).__dict__ == {"tenant": tenant, "sub": "agent-9", "role": "agent"}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{services['hs'].port}") as channel:
        assert (await BackboneClient(channel).whoami(_bearer(lines[0]))).value == f"{tenant}|agent-9|agent"

    # RS256 when a private key is configured; verifiable with the public key alone.
    done = _cli("token", "--tenant", tenant, "--role", "admin", "--sub", "ops", KAIWA_JWT_PRIVATE_KEY=services["private"])
    assert done.returncode == 0, done.stderr
    identity = verify_token(Settings(jwt_public_key=services["public"]), done.stdout.strip())
    assert (identity.tenant, identity.role, identity.sub) == (tenant, "admin", "ops")

    # The development secret warns on stderr; stdout still holds only the token.
    done = _cli("token", "--tenant", tenant, "--role", "visitor", "--sub", "v-1")
    assert done.returncode == 0 and "development secret" in done.stderr
    assert len(done.stdout.split()) == 1

    done = _cli("token", "--tenant", tenant, "--role", "superuser", "--sub", "x", KAIWA_JWT_SECRET=secret)
    assert done.returncode != 0 and done.stdout == "" and "role" in done.stderr
