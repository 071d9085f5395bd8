-- The 聚石塔 (Jushita) trade push table, as Taobao writes it into the brand's RDS
-- (see docs/cdc-table-mappings.md). Useful to try the CDC path locally; in production the push
-- service creates and fills it. `jdp_modified` is the incremental pull's default watermark.

CREATE DATABASE IF NOT EXISTS sys_info DEFAULT CHARACTER SET utf8mb4;

CREATE TABLE IF NOT EXISTS sys_info.jdp_tb_trade (
  tid          BIGINT       NOT NULL,
  status       VARCHAR(64)  NULL,
  type         VARCHAR(32)  NULL,
  seller_nick  VARCHAR(64)  NULL,
  buyer_nick   VARCHAR(64)  NULL,
  created      DATETIME     NULL,
  modified     DATETIME     NULL,
  jdp_hashcode VARCHAR(128) NULL,
  jdp_response MEDIUMTEXT   NULL COMMENT '{"trade_fullinfo_get_response": {"trade": {...}}}',
  jdp_created  DATETIME     NULL,
  jdp_modified DATETIME     NULL,
  PRIMARY KEY (tid),
  KEY ind_jdp_tb_trade_jdp_modified (jdp_modified, tid)
) ENGINE=InnoDB;
