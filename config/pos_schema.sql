-- The store POS schema the shipped CDC table mappings read (docs/cdc-table-mappings.md).
-- A brand whose POS differs keeps its own tables and maps them in its rules file instead.
--
-- CDC needs, on the MySQL side: binlog_format=ROW, binlog_row_image=FULL, a primary key on
-- every table (DMS partitions the Kinesis stream by it, which keeps each row's changes in
-- order) and an `updated_at` that the application (or ON UPDATE) moves with every change: it is
-- the time a change happened, which decides field precedence, and the incremental pull's
-- watermark for sources without binlog access.

CREATE DATABASE IF NOT EXISTS pos DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS pos.members (
  member_no  VARCHAR(32)  NOT NULL COMMENT 'loyalty member number: identifier member_no, scope "pos"',
  phone      VARCHAR(32)  NULL     COMMENT 'any common spelling, normalized to E.164 by the sync',
  name       VARCHAR(64)  NULL,
  level      VARCHAR(16)  NULL     COMMENT 'membership tier, e.g. gold',
  store      VARCHAR(32)  NULL     COMMENT 'home store code',
  updated_at DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
                          COMMENT 'local time of the store (Asia/Shanghai unless the mapping says otherwise)',
  PRIMARY KEY (member_no),
  KEY members_by_updated_at (updated_at, member_no)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS pos.orders (
  order_no   VARCHAR(32)    NOT NULL,
  member_no  VARCHAR(32)    NULL     COMMENT 'NULL for a walk-in sale: nothing to link it to',
  store      VARCHAR(32)    NOT NULL,
  status     VARCHAR(16)    NOT NULL COMMENT 'e.g. paid, refunded',
  total      DECIMAL(12, 2) NOT NULL,
  -- LINES is a reserved word in MySQL: quote it in SQL
  `lines`    JSON           NULL     COMMENT '[{"sku", "name", "quantity", "price", "amount"}, ...]',
  created_at DATETIME(3)    NOT NULL,
  updated_at DATETIME(3)    NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (order_no),
  KEY orders_by_updated_at (updated_at, order_no),
  KEY orders_by_member (member_no)
) ENGINE=InnoDB;

-- Stock on hand per store and SKU. Each row change is the POS's count for that SKU there: the
-- shipped mapping applies it to the inventory ledger as a `count` versioned by updated_at (hence
-- microseconds), or, with `"report_only": true` in a mapping of your own, keeps it as the POS's
-- reported stock for reconciliation. `store` holds the location's name in the rules' inventory
-- locations; a POS with codes of its own maps them with stock.location_codes.
CREATE TABLE IF NOT EXISTS pos.stock (
  store      VARCHAR(64)  NOT NULL COMMENT 'location name, e.g. store-xuhui',
  sku        VARCHAR(64)  NOT NULL,
  qty        INT          NOT NULL COMMENT 'units on hand, as the POS counts them',
  updated_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (store, sku),
  KEY stock_by_updated_at (updated_at, store, sku)
) ENGINE=InnoDB;
