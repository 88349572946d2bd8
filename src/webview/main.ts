// placeholder: replaced by the panel script
export {};
