-- Travel eSIMs: a second, time-boxed line an approver chose instead of roaming on the home
-- line. The line ends with the trip: the sweep ends it the day after `ends_on`.
-- (migrations/sqlite/0028_travel_esims.sql holds the same schema.)
CREATE TABLE travel_esims (
    tenant_id    uuid NOT NULL REFERENCES tenants(id),
    line_id      uuid NOT NULL,
    employee_id  uuid NOT NULL,
    request_id   uuid NOT NULL,
    country      text NOT NULL,
    ends_on      date NOT NULL,
    state        text NOT NULL CHECK (state IN ('active', 'ended')),
    PRIMARY KEY (tenant_id, line_id),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id)
);
CREATE INDEX travel_esims_due ON travel_esims (state, ends_on);
SELECT lineup_tenant_isolation('travel_esims');
