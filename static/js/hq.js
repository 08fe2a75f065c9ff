// The HQ console: the live board, shows, terms, branches, staff, catalog and stock for
// the signed-in HQ operator's merchant.

import { api } from "./api.js";
import { renderBoard } from "./hq-board.js";
import { HqBranches } from "./hq-branches.js";
import { HqCatalog } from "./hq-catalog.js";
import { HqSettings } from "./hq-settings.js";
import { HqShows } from "./hq-shows.js";
import { startOfToday } from "./period.js";
import { toSignIn, whoAmI, wireSignOut } from "./signout.js";
import { RoomSocket } from "./socket.js";

const $ = (id) => document.getElementById(id);
window.lianbo = { board: null, socket: null };

const LIVE_TEXT = { open: "live", connecting: "connecting…", closed: "reconnecting…" };

function onFrame(type, data) {
  if (type === "snapshot" || type === "board") {
    window.lianbo.board = data;
    renderBoard(data);
  }
}

wireSignOut($("sign-out"));
const me = await whoAmI();
if (!me || me.role !== "hq_operator") {
  toSignIn();
} else {
  const merchant = me.merchant;
  const { merchant: found } = await api(`/api/merchants/${encodeURIComponent(merchant)}`);
  $("merchant-name").textContent = found.name;
  document.title = `${found.name} · HQ console · Lianbo Live`;

  const socket = new RoomSocket(
    `/ws/merchants/${encodeURIComponent(merchant)}/board?from=${startOfToday()}`,
    {
      onFrame,
      onState: async (state) => {
        document.body.dataset.socket = state;
        $("live").textContent = LIVE_TEXT[state] ?? state;
        $("live").className = `badge live-state ${state === "open" ? "badge-ok" : "badge-dim"}`;
        if (state === "closed" && !(await whoAmI())) {
          socket.stop();
          toSignIn();
        }
      },
    },
  );
  window.lianbo.socket = socket;
  socket.start();
  window.addEventListener("online", () => socket.wake());

  const shows = new HqShows(merchant);
  const settings = new HqSettings(merchant);
  const catalog = new HqCatalog(merchant);
  const branches = new HqBranches(merchant, (list) => {
    settings.setBranches(list);
    catalog.setBranches(list);
  });
  await Promise.all([shows.load(), settings.loadTerms(), branches.load()]);
}
