-- The tables of version 1 as `wsgi-taskqueue init` made them on sqlite
-- ({prefix}: the table prefix). Frozen: tests/test_sql_migrations.py
-- upgrades them and compares the result with the tables made fresh.

CREATE TABLE {prefix}attempts (
	queue VARCHAR(191) NOT NULL, 
	task_id VARCHAR(64) NOT NULL, 
	attempt INTEGER NOT NULL, 
	status VARCHAR(200) NOT NULL, 
	at DOUBLE NOT NULL, 
	duration_ms DOUBLE NOT NULL, 
	PRIMARY KEY (queue, task_id, attempt)
);

CREATE TABLE {prefix}dead (
	id INTEGER NOT NULL, 
	queue VARCHAR(191) NOT NULL, 
	record BLOB NOT NULL, 
	dead_at DOUBLE NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX {prefix}dead_at ON {prefix}dead (queue, dead_at);

CREATE INDEX {prefix}dead_queue ON {prefix}dead (queue, id);

CREATE TABLE {prefix}leases (
	queue VARCHAR(191) NOT NULL, 
	consumer VARCHAR(191) NOT NULL, 
	token VARCHAR(64) NOT NULL, 
	expires DOUBLE NOT NULL, 
	lease DOUBLE NOT NULL, 
	info TEXT NOT NULL, 
	PRIMARY KEY (queue, consumer)
);

CREATE TABLE {prefix}minutes (
	queue VARCHAR(191) NOT NULL, 
	minute INTEGER NOT NULL, 
	done INTEGER NOT NULL, 
	retried INTEGER NOT NULL, 
	dead INTEGER NOT NULL, 
	PRIMARY KEY (queue, minute)
);

CREATE TABLE {prefix}status (
	seq INTEGER NOT NULL, 
	queue VARCHAR(191) NOT NULL, 
	task_id VARCHAR(64) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	updated DOUBLE NOT NULL, 
	consumer VARCHAR(191), 
	attempt INTEGER, 
	next DOUBLE, 
	status VARCHAR(200), 
	finished INTEGER NOT NULL, 
	header TEXT NOT NULL, 
	PRIMARY KEY (seq), 
	CONSTRAINT {prefix}status_task UNIQUE (queue, task_id)
);

CREATE INDEX {prefix}status_updated ON {prefix}status (queue, updated);

CREATE TABLE {prefix}tasks (
	id INTEGER NOT NULL, 
	queue VARCHAR(191) NOT NULL, 
	state VARCHAR(10) NOT NULL, 
	due DOUBLE NOT NULL, 
	delayed BOOLEAN NOT NULL, 
	batch VARCHAR(64), 
	staged_at DOUBLE, 
	slot VARCHAR(191), 
	consumer VARCHAR(191), 
	deliveries INTEGER NOT NULL, 
	task_id VARCHAR(64), 
	attempt INTEGER, 
	message BLOB NOT NULL, 
	PRIMARY KEY (id)
);

CREATE INDEX {prefix}tasks_batch ON {prefix}tasks (batch, queue, state);

CREATE INDEX {prefix}tasks_ready ON {prefix}tasks (queue, state, due, id);

CREATE INDEX {prefix}tasks_slot ON {prefix}tasks (queue, consumer, slot);

CREATE TABLE {prefix}version (
	version INTEGER NOT NULL
);
