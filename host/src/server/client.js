// Wisp's channel client: placeholder, replaced by the real client.
"use strict";
