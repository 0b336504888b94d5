import type { AuditEvent } from '../metadata/audit.ts';
import type { Metadata } from '../metadata/index.ts';

/**
 * The audit log's writer: who did what, when, from where. A failure to write is logged by the
 * caller, never turned into a failed push.
 */
export class AuditService {
  constructor(private readonly meta: Metadata, readonly recordPulls: boolean) {}

  async record(event: AuditEvent): Promise<void> {
    await this.meta.audit.record(event);
  }
}
