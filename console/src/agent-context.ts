// What the parts of the agent console share: typed clients for the services, sending the
// signed-in agent's token, and the tenant's agents (names for menus, members, transfers).
import { AiAssistService, ConversationService, CrmBridgeService, RoutingService, VisitorService, connect } from "./api";
import type { Agent } from "./gen/kaiwa/routing/v1/routing_pb";

export function agentClients(baseUrl: string, token: () => string) {
  const client = connect(baseUrl, token);
  return {
    routing: client(RoutingService),
    conv: client(ConversationService),
    visitors: client(VisitorService),
    ai: client(AiAssistService),
    crm: client(CrmBridgeService),
  };
}

export type AgentClients = ReturnType<typeof agentClients>;

/** The tenant's agents, fetched again on demand (their availability changes). */
export class Colleagues {
  private byId = new Map<string, Agent>();

  constructor(private routing: AgentClients["routing"]) {}

  async refresh(): Promise<Agent[]> {
    const { agents } = await this.routing.listAgents({});
    this.byId = new Map(agents.map((a) => [a.id, a]));
    return agents;
  }

  knows(agentId: string): boolean {
    return this.byId.has(agentId);
  }

  name(agentId: string): string {
    return this.byId.get(agentId)?.name ?? "another agent";
  }
}
