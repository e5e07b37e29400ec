// The gateway's gRPC-Web endpoint and typed clients for the five services.
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

export { ConversationService } from "./gen/kaiwa/conversation/v1/conversation_pb";
export { RoutingService } from "./gen/kaiwa/routing/v1/routing_pb";
export { VisitorService } from "./gen/kaiwa/visitor/v1/visitor_pb";
export { AiAssistService } from "./gen/kaiwa/ai_assist/v1/ai_assist_pb";
export { CrmBridgeService } from "./gen/kaiwa/crm_bridge/v1/crm_bridge_pb";

/** The gateway's URL: ?gateway=..., else what the console's server says in config.json. */
export async function gatewayUrl(): Promise<string> {
  const fromQuery = new URLSearchParams(location.search).get("gateway");
  if (fromQuery) return fromQuery;
  const config = await (await fetch("config.json")).json();
  return config.gateway as string;
}

/** Clients that send `Authorization: Bearer <token()>` when a token is known. */
export function connect(baseUrl: string, token: () => string) {
  const auth: Interceptor = (next) => (req) => {
    const value = token();
    if (value) req.header.set("authorization", `Bearer ${value}`);
    return next(req);
  };
  const transport = createGrpcWebTransport({ baseUrl, interceptors: [auth] });
  return <S extends DescService>(service: S): Client<S> => createClient(service, transport);
}

export const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

export function el(tag: string, className: string, text = ""): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

export const time = (ts?: Timestamp) => (ts ? timestampDate(ts).toLocaleTimeString() : "");

/** A JWT's claims (not verified: the services do that). */
export function claims(jwt: string): Record<string, string> {
  const part = jwt.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
}

/** Shows an error in the page's status line instead of failing silently. */
export function report(error: unknown) {
  const line = document.getElementById("status");
  if (line) line.textContent = `Error: ${error instanceof Error ? error.message : String(error)}`;
  console.error(error);
}

/** Calls `send(true)` while the user types and `send(false)` 3 s after the last key. */
export function typingNotifier(send: (typing: boolean) => Promise<unknown>) {
  let timer: number | undefined;
  return () => {
    if (timer === undefined) send(true).catch(report);
    clearTimeout(timer);
    timer = window.setTimeout(() => {
      timer = undefined;
      send(false).catch(report);
    }, 3000);
  };
}

/** Runs `probe` now and then every `ms` (for lists the services offer no stream of). */
export function every(ms: number, probe: () => Promise<unknown>) {
  const run = () => probe().catch(report).finally(() => window.setTimeout(run, ms));
  run();
}

/** A definition list of the rows that have a value (visitor details, CRM fields). */
export function definitions(rows: [string, string][]): HTMLElement[] {
  return rows.filter(([, value]) => value).flatMap(([term, value]) => [el("dt", "", term), el("dd", "", value)]);
}
