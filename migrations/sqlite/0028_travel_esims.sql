-- Travel eSIMs: a second, time-boxed line an approver chose instead of roaming on the home
-- line. The line ends with the trip: the sweep ends it the day after `ends_on`.
-- (migrations/postgres/0028_travel_esims.sql holds the same schema, with row-level security.)
CREATE TABLE travel_esims (
    tenant_id    BLOB NOT NULL REFERENCES tenants(id),
    line_id      BLOB NOT NULL,
    employee_id  BLOB NOT NULL,
    request_id   BLOB NOT NULL,
    country      TEXT NOT NULL,
    ends_on      TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('active', 'ended')),
    PRIMARY KEY (tenant_id, line_id),
    FOREIGN KEY (tenant_id, line_id) REFERENCES lines (tenant_id, id),
    FOREIGN KEY (tenant_id, employee_id) REFERENCES employees (tenant_id, id),
    FOREIGN KEY (tenant_id, request_id) REFERENCES requests (tenant_id, id)
);
CREATE INDEX travel_esims_due ON travel_esims (state, ends_on);
