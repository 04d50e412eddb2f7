"""Source connectors: where pulled data comes from (files, SQL databases), behind one port."""
