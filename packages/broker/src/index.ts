// Public surface of @handoff/broker. Re-exports only.
export {};
