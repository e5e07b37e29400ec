"""CRM-01: connecting the tenant's CRM (a CRM admin in one step; anyone else with the CRM
admin's e-mail and integration key, or the seed's refusal), the key stored encrypted and
never returned, changing the account, disabling and re-enabling, and what agents with
and without a CRM user of their own may do."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from kaiwa.crm_bridge.v1 import crm_bridge_pb2 as pb
from kaiwa.crm_bridge.v1 import settings_pb2 as spb

from services.crm_bridge.tests.kit import admin, agent, connect_zoho, crm_service, missed_chat, zoho_env
from services.crm_bridge.tests.zoho_standin import ZohoStandIn
from tests.fixtures import auth, eventually, status_of

SEED_REFUSAL = "現在のメールアドレスをZoho CRMの管理者として認識できませんでした"
KEY = "zsc-key-0123456789abcdef"


@pytest.fixture(scope="module")
def standin():
    zoho = ZohoStandIn()
    zoho.start()
    yield zoho
    zoho.stop()


@pytest.fixture(scope="module")
async def crm(standin):
    async with crm_service(zoho_env(standin)) as service:
        yield service


def violations(err: grpc.aio.AioRpcError) -> list[str]:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return []


async def crm_admin(crm, tenant, sub="boss-agent", email="boss@example.com"):
    return await crm.stub.UpsertCrmUser(
        pb.UpsertCrmUserRequest(email=email, name="Boss", admin=True, agent_id=sub), metadata=admin(tenant)
    )


async def test_crm01_non_admin_without_key_is_refused_with_the_seed_message(crm, tenant):
    for request in (pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), pb.ConnectCrmRequest(kind=pb.CRM_KIND_ZOHO)):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.ConnectCrm(request, metadata=admin(tenant, "not-a-crm-admin"))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert err.value.details().startswith(SEED_REFUSAL)
        assert violations(err.value) == ["integration_key"]  # the form: the admin's e-mail and key
    # An agent may not connect at all.
    call = crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=agent(tenant))
    assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED


async def test_crm01_a_crm_admin_connects_in_one_step(crm, tenant):
    await crm_admin(crm, tenant, sub="admin-7")
    connection = await crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=admin(tenant, "admin-7"))
    assert (connection.kind, connection.enabled, connection.admin_email, connection.connected_by) == (
        pb.CRM_KIND_BUILTIN,
        True,
        "boss@example.com",
        "admin-7",
    )


async def test_crm01_anyone_else_connects_with_the_admins_email_and_key_stored_encrypted(crm, tenant):
    await crm_admin(crm, tenant)
    # The CRM admin sets the key (the built-in CRM's "create a ZSC key"); a non-admin may not.
    call = crm.stub.SetIntegrationKey(pb.SetIntegrationKeyRequest(integration_key=KEY), metadata=agent(tenant))
    assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED
    done = await crm.stub.SetIntegrationKey(
        pb.SetIntegrationKeyRequest(integration_key=KEY), metadata=agent(tenant, "boss-agent")
    )
    assert done.admin_email == "boss@example.com"

    for email, key in [("boss@example.com", "wrong-key-0123456789"), ("nobody@example.com", KEY)]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.ConnectCrm(
                pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN, admin_email=email, integration_key=key), metadata=admin(tenant)
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and SEED_REFUSAL in err.value.details()

    request = pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN, admin_email="BOSS@example.com", integration_key=KEY)
    connection = await crm.stub.ConnectCrm(request, metadata=admin(tenant))
    assert connection.admin_email == "boss@example.com" and connection.has_integration_key
    got = await crm.stub.GetConnection(pb.GetConnectionRequest(), metadata=admin(tenant))
    assert KEY.encode() not in got.SerializeToString() and KEY.encode() not in connection.SerializeToString()
    pool = crm.runner.ctx.pool
    stored = await pool.fetchval("SELECT key_cipher FROM connections WHERE tenant = $1", tenant)
    key_hash = await pool.fetchval("SELECT key_hash FROM crm_users WHERE tenant = $1 AND admin", tenant)
    assert KEY not in stored and stored.startswith("gAAAAA") and KEY not in key_hash


async def test_crm01_zoho_connection_checks_the_key_and_the_admin(crm, standin, tenant):
    client_id, client_secret = standin.client
    for email, key in [
        ("boss@zylker.example", "1000.revoked-refresh-token"),
        ("sales@zylker.example", next(iter(standin.refresh_tokens))),
    ]:
        request = pb.ConnectCrmRequest(
            kind=pb.CRM_KIND_ZOHO, admin_email=email, integration_key=key, client_id=client_id, client_secret=client_secret
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await crm.stub.ConnectCrm(request, metadata=admin(tenant))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and SEED_REFUSAL in err.value.details()
    bad_dc = pb.ConnectCrmRequest(
        kind=pb.CRM_KIND_ZOHO, admin_email="boss@zylker.example", integration_key="x" * 20, data_center="mars"
    )
    assert await status_of(crm.stub.ConnectCrm(bad_dc, metadata=admin(tenant))) == grpc.StatusCode.INVALID_ARGUMENT


async def test_crm01_change_the_account_disable_and_enable_again(crm, standin, tenant):
    await crm_admin(crm, tenant, sub="admin-7")
    await crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=admin(tenant, "admin-7"))
    changed = await connect_zoho(crm.stub, tenant, standin)  # the account is changed to Zoho CRM
    assert (changed.kind, changed.admin_email, changed.data_center) == (pb.CRM_KIND_ZOHO, "boss@zylker.example", "jp")

    disabled = await crm.stub.DisableCrm(pb.DisableCrmRequest(), metadata=admin(tenant))
    assert not disabled.enabled and disabled.kind == pb.CRM_KIND_ZOHO
    context = await crm.stub.GetContext(pb.GetContextRequest(email="x@example.com"), metadata=agent(tenant))
    assert not context.connected and context.message == "この訪問者のCRM情報はありません"
    call = crm.stub.AddRecordFromChat(pb.AddRecordFromChatRequest(email="x@example.com"), metadata=admin(tenant))
    assert await status_of(call) == grpc.StatusCode.FAILED_PRECONDITION
    event = await crm.publish("conversation", tenant, missed_chat("while-off@example.com"))
    await eventually(lambda: crm.processed(event), "the event is taken")
    assert standin.find("Leads", Email="while-off@example.com") == []  # nothing written while disabled

    enabled = await crm.stub.EnableCrm(pb.EnableCrmRequest(), metadata=admin(tenant))
    assert enabled.enabled and (enabled.kind, enabled.admin_email) == (pb.CRM_KIND_ZOHO, "boss@zylker.example")
    added = await crm.stub.AddRecordFromChat(pb.AddRecordFromChatRequest(email="back@example.com"), metadata=admin(tenant))
    assert added.state == pb.WRITE_STATE_DONE and standin.find("Leads", Email="back@example.com")


async def test_crm01_agents_without_a_crm_user_only_add_leads_and_notify_sales(crm, tenant):
    plain = agent(tenant, "agent-plain")
    lead = await crm.stub.AddRecordFromChat(
        pb.AddRecordFromChatRequest(email="v@example.com", name="V", owner=""), metadata=plain
    )
    assert lead.state == pb.WRITE_STATE_DONE and lead.record.owner == ""  # the owner is not shown to them
    rid = lead.record.id
    refused = [
        crm.stub.AddRecordFromChat(
            pb.AddRecordFromChatRequest(email="c@example.com", type=pb.RECORD_TYPE_CONTACT), metadata=plain
        ),
        crm.stub.AddNote(pb.AddNoteRequest(record_id=rid, text="memo"), metadata=plain),
        crm.stub.ListNotes(pb.ListNotesRequest(record_id=rid), metadata=plain),
        crm.stub.UpdateRecordFields(
            pb.UpdateRecordFieldsRequest(record_id=rid, fields={"phone": "03-1111-2222"}), metadata=plain
        ),
        crm.stub.ConvertLead(pb.ConvertLeadRequest(record_id=rid), metadata=plain),
        crm.stub.AddTask(pb.AddTaskRequest(record_id=rid, subject="call", due=spb.FOLLOW_UP_TODAY), metadata=plain),
        crm.stub.UpsertRecord(pb.UpsertRecordRequest(email="v@example.com", name="Other"), metadata=plain),
    ]
    for call in refused:
        assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED
    sent = await crm.stub.NotifySales(pb.NotifySalesRequest(record_id=rid, text="折り返し希望"), metadata=plain)
    assert sent.note.kind == "notify_sales"
    context = await crm.stub.GetContext(pb.GetContextRequest(email="v@example.com"), metadata=plain)
    assert context.found and context.can_notify_sales  # CRM data is shown to every chat agent

    await crm.stub.UpsertCrmUser(pb.UpsertCrmUserRequest(email="rep@example.com", agent_id="agent-rep"), metadata=admin(tenant))
    rep = auth(tenant, "agent", "agent-rep")
    await crm.stub.AddNote(pb.AddNoteRequest(record_id=rid, text="memo"), metadata=rep)
    updated = await crm.stub.UpdateRecordFields(
        pb.UpdateRecordFieldsRequest(record_id=rid, fields={"phone": "03-1111-2222"}), metadata=rep
    )
    assert updated.record.fields["phone"] == "03-1111-2222"
    notes = await crm.stub.ListNotes(pb.ListNotesRequest(record_id=rid), metadata=rep)
    assert [(n.kind, n.text) for n in notes.notes] == [("notify_sales", "折り返し希望"), ("manual", "memo")]
    mine = await crm.stub.AddRecordFromChat(pb.AddRecordFromChatRequest(email="w@example.com"), metadata=rep)
    assert mine.record.owner == "rep@example.com"  # attending agent's CRM user (CRM-04), shown to them


async def test_plat02_connections_and_crm_users_are_per_tenant(crm, tenant):
    await crm_admin(crm, tenant, sub="admin-7")
    await crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=admin(tenant, "admin-7"))
    other = f"{tenant}-other"
    theirs = await crm.stub.GetConnection(pb.GetConnectionRequest(), metadata=admin(other))
    assert theirs.admin_email == "" and theirs.kind == pb.CRM_KIND_BUILTIN
    assert list((await crm.stub.ListCrmUsers(pb.ListCrmUsersRequest(), metadata=admin(other))).users) == []
    call = crm.stub.ConnectCrm(pb.ConnectCrmRequest(kind=pb.CRM_KIND_BUILTIN), metadata=admin(other, "admin-7"))
    assert await status_of(call) == grpc.StatusCode.PERMISSION_DENIED
