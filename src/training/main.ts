// placeholder: replaced by the CLI / child-process entry
export {};
