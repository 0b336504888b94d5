import type { AuditEvent } from '../metadata/audit.ts';
import type { NewEvent } from '../metadata/events.ts';
import type { Metadata } from '../metadata/index.ts';

/**
 * Action of a push refused because it would bring its project over its storage quota (success
 * false; detail: the digest refused and the figures `quotaBytes`, `usageBytes`, `sizeBytes`). Named
 * apart from a permission refusal, which the client sees as the same 403 DENIED.
 */
export const QUOTA_EXCEEDED_ACTION = 'quota.exceeded';

/**
 * The audit log's writer: who did what, when, from where. A failure to write is logged by the
 * caller, never turned into a failed push.
 */
export class AuditService {
  /** `auditPulls`: the configuration's `audit.pulls`, in effect unless an administrator set it at run time. */
  constructor(private readonly meta: Metadata, private readonly auditPulls: boolean) {}

  /**
   * Whether pulls are written to the audit log: the run-time setting `auditPulls` when one was set
   * (on any replica), else the configuration's. Synchronous and answered from memory (see
   * SettingStore.cached), as every pull asks.
   */
  get recordPulls(): boolean {
    return this.meta.settings.cached().auditPulls?.value ?? this.auditPulls;
  }

  async record(event: AuditEvent): Promise<void> {
    await this.meta.audit.record(event);
  }

  /** Appends an outbox event that belongs to no change (a refusal, such as `quota.exceeded`). */
  async recordEvent(event: NewEvent): Promise<void> {
    await this.meta.events.record(event);
  }

  /**
   * Whether pulls are to be recorded as `artifact.pulled` events: only while some enabled webhook
   * subscribes to them. Synchronous and answered from memory (see WebhookStore.pullsWatched).
   */
  pullEventsWanted(): boolean {
    return this.meta.webhooks.pullsWatched();
  }
}
