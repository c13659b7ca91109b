// The /call page: a browser call to a Switchboard scenario or persona over WebRTC.
// Plain JS, no build step. The server answers our SDP offer itself (aiortc); events about the call
// (transcript, persona, handoffs, result) arrive on the "switchboard" data channel we open.
// window.switchboardCall holds the page's view of the call (tests and the benchmark read it).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const LOUD = 0.01; // RMS (0..1) above which audio counts as sound
  const TICK_MS = 20;

  const call = window.switchboardCall = {
    state: "idle", callId: null, target: null, result: null, reason: null,
    persona: null, personaName: null, handoffs: [], transcript: [], events: [], error: null,
    agentAudio: { peak: 0, loudMs: 0, firstAt: null },
    mic: { peak: 0, level: 0, lastLoudAt: null },
    turns: [], // {speechEnd, agentStart, latency} measured here: caller's last sound -> agent's first
    avatar: { status: "none", echoes: 0, interrupts: 0 },
  };

  let iceServers = [];
  let csrf = null; // a console session's CSRF token (changes must echo it)
  let pc = null;
  let channel = null;
  let localStream = null;
  let audioCtx = null;
  let meterTimer = null;
  let agentLoud = false;
  let agentQuietSince = 0;
  let avatar = null; // {frame, conversationId, joined}
  const names = {}; // persona -> display name, as the persona events tell them
  let ending = null;

  // --- access ------------------------------------------------------------------------------------
  function authHeaders() {
    const token = sessionStorage.getItem("switchboard.token");
    return token ? { Authorization: "Bearer " + token } : {};
  }

  $("access").addEventListener("submit", (e) => e.preventDefault());
  $("access-save").addEventListener("click", () => {
    const value = $("access-token").value.trim();
    if (value) sessionStorage.setItem("switchboard.token", value);
    else sessionStorage.removeItem("switchboard.token");
    $("access-token").value = "";
    loadTargets();
  });

  function setStatus(state, text) {
    call.state = state;
    $("status").dataset.state = state;
    $("status").textContent = text;
  }

  async function loadTargets() {
    let data;
    try {
      const resp = await fetch("/api/v1/webrtc/targets", { headers: authHeaders(), credentials: "same-origin" });
      data = await resp.json();
    } catch (err) {
      setStatus("error", "Switchboard is not reachable: " + err);
      return;
    }
    iceServers = data.ice_servers || [];
    csrf = data.csrf || null;
    const select = $("target");
    select.textContent = "";
    const groups = { scenario: "Scenarios", persona: "Personas" };
    for (const kind of Object.keys(groups)) {
      const items = data.targets.filter((t) => t.kind === kind);
      if (!items.length) continue;
      const group = document.createElement("optgroup");
      group.label = groups[kind];
      for (const t of items) {
        const option = document.createElement("option");
        option.value = kind + ":" + t.name;
        option.textContent = t.display_name || t.name;
        group.appendChild(option);
      }
      select.appendChild(group);
    }
    const params = new URLSearchParams(location.search);
    const wanted = params.get("scenario") ? "scenario:" + params.get("scenario")
      : params.get("persona") ? "persona:" + params.get("persona") : null;
    if (wanted && [...select.options].some((o) => o.value === wanted)) select.value = wanted;
    $("access").hidden = data.may_call || data.targets.length > 0;
    $("call").disabled = data.targets.length === 0 || call.state === "connecting" || call.state === "connected";
    if (!data.targets.length) {
      setStatus("idle", data.may_call ? "Nothing takes browser calls yet."
        : data.signed_in ? "Your role may not place calls." : "Sign in to call.");
    }
  }

  // --- the call ------------------------------------------------------------------------------------
  async function startCall() {
    const [kind, ...rest] = $("target").value.split(":");
    const name = rest.join(":");
    resetView();
    call.target = { kind, name };
    $("call").disabled = true;
    setStatus("connecting", "Asking for the microphone…");
    try {
      localStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      audioCtx = new (window.AudioContext || window.webkitAudioContext)();
      audioCtx.resume().catch(() => {}); // never wait on it: without a sound device the meters stay flat
      const mic = analyser(localStream);
      setStatus("connecting", "Connecting…");
      const token = await mintToken(kind, name);
      pc = new RTCPeerConnection({ iceServers });
      channel = pc.createDataChannel("switchboard");
      channel.onmessage = (e) => onEvent(JSON.parse(e.data));
      for (const track of localStream.getAudioTracks()) pc.addTrack(track, localStream);
      let agent = null;
      pc.ontrack = (e) => {
        const stream = e.streams && e.streams[0] ? e.streams[0] : new MediaStream([e.track]);
        $("agent-audio").srcObject = stream; // Chromium feeds WebAudio only from a played stream
        const viaWebAudio = analyser(stream);
        const receiver = e.receiver;
        // Web Audio when it runs; else the level the RTP packets carry (RFC 6464), which every
        // browser reports without a sound device.
        agent = () => (audioCtx && audioCtx.state === "running") ? viaWebAudio() : packetLevel(receiver);
      };
      pc.onconnectionstatechange = () => {
        if (!pc) return;
        if (pc.connectionState === "failed") finish("The connection failed.");
        if (pc.connectionState === "closed" || pc.connectionState === "disconnected") {
          if (call.state === "connected") setStatus("connected", "Connection unstable…");
        }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gatheringDone(pc, 3000);
      const resp = await fetch("/api/v1/webrtc/offer", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token, sdp: pc.localDescription.sdp, type: "offer" }),
      });
      const answer = await resp.json();
      if (!resp.ok) throw new Error(answer.detail || resp.statusText);
      call.callId = answer.call_id;
      await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
      $("hangup").disabled = false;
      $("keypad-box").hidden = false;
      meterTimer = setInterval(() => measure(mic, agent && agent()), TICK_MS);
    } catch (err) {
      call.error = String(err.message || err);
      finish("Could not call: " + call.error);
    }
  }

  async function mintToken(kind, name) {
    const resp = await fetch("/api/v1/calls/token", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...authHeaders(), ...(csrf ? { "X-CSRF-Token": csrf } : {}) },
      body: JSON.stringify({ [kind]: name }),
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.status === 401) $("access").hidden = false;
    if (!resp.ok) throw new Error(typeof body.detail === "string" ? body.detail : resp.statusText);
    return body.token;
  }

  function gatheringDone(peer, limitMs) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, limitMs); // send what we have: host candidates come first
      peer.addEventListener("icegatheringstatechange", () => {
        if (peer.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
      });
    });
  }

  function hangUp() {
    $("hangup").disabled = true;
    setStatus("ending", "Hanging up…");
    if (channel && channel.readyState === "open") {
      channel.send(JSON.stringify({ type: "hangup" }));
      ending = setTimeout(() => finish("Call ended."), 8000); // the result normally comes first
    } else {
      finish("Call ended.");
    }
  }

  function finish(text) {
    if (ending) { clearTimeout(ending); ending = null; }
    if (meterTimer) { clearInterval(meterTimer); meterTimer = null; }
    leaveAvatar();
    if (channel) { try { channel.close(); } catch (e) { /* closed */ } channel = null; }
    if (pc) { pc.close(); pc = null; }
    if (localStream) { localStream.getTracks().forEach((t) => t.stop()); localStream = null; }
    if (audioCtx) { audioCtx.close(); audioCtx = null; }
    $("agent-audio").srcObject = null;
    $("hangup").disabled = true;
    $("call").disabled = false;
    $("keypad-box").hidden = true;
    $("caption").hidden = true;
    setStatus(call.result ? "ended" : (call.error ? "error" : "ended"), text);
  }

  // --- events from Switchboard ----------------------------------------------------------------------
  function onEvent(ev) {
    call.events.push(ev);
    switch (ev.type) {
      case "state":
        if (ev.state === "connected") setStatus("connected", "Connected. Speak when you are ready.");
        break;
      case "persona":
        call.persona = ev.persona;
        call.personaName = ev.display_name || ev.persona;
        names[ev.persona] = call.personaName;
        $("persona").textContent = call.personaName;
        break;
      case "handoff": {
        call.handoffs.push({ from: ev.from, to: ev.to });
        if (ev.to_name) names[ev.to] = ev.to_name;
        if (ev.from_name) names[ev.from] = ev.from_name;
        const li = document.createElement("li");
        li.textContent = (ev.from_name || ev.from) + " → " + (ev.to_name || ev.to);
        $("handoffs").appendChild(li);
        break;
      }
      case "say":
        $("caption").hidden = false;
        $("caption").textContent = (names[ev.persona] || call.personaName || "Agent") + ": " + ev.text;
        echoToAvatar(ev.text);
        break;
      case "barge_in":
        $("caption").hidden = true;
        interruptAvatar();
        break;
      case "transcript": {
        call.transcript.push({ speaker: ev.speaker, text: ev.text, persona: ev.persona });
        const li = document.createElement("li");
        li.className = ev.speaker;
        const who = document.createElement("span");
        who.className = "who";
        who.textContent = ev.speaker === "caller" ? "You" : (names[ev.persona] || ev.persona || "Agent");
        li.appendChild(who);
        li.appendChild(document.createTextNode(ev.text + (ev.interrupted ? " …" : "")));
        $("transcript").appendChild(li);
        li.scrollIntoView({ block: "nearest" });
        if (ev.speaker === "agent") $("caption").hidden = true;
        break;
      }
      case "avatar":
        if (ev.status === "live") startAvatar(ev);
        else { call.avatar.status = "unavailable"; leaveAvatar(); }
        break;
      case "result":
        call.result = ev.result;
        call.reason = ev.reason || "";
        $("result").hidden = false;
        $("result-value").textContent = ev.result;
        $("result-reason").textContent = ev.reason ? "(" + ev.reason + ")" : "";
        $("result-call").textContent = call.callId || "";
        break;
      case "hangup":
        finish("Call ended" + (call.result ? ": " + call.result : "") + ".");
        break;
      default:
        break;
    }
  }

  // --- levels ---------------------------------------------------------------------------------------
  function analyser(stream) {
    const node = audioCtx.createAnalyser();
    node.fftSize = 1024;
    audioCtx.createMediaStreamSource(stream).connect(node);
    const buf = new Float32Array(node.fftSize);
    return () => {
      node.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      return Math.sqrt(sum / buf.length);
    };
  }

  function packetLevel(receiver) {
    const sources = receiver && receiver.getSynchronizationSources ? receiver.getSynchronizationSources() : [];
    const fresh = sources.filter((src) => performance.timeOrigin + performance.now() - src.timestamp < 100);
    return fresh.length && typeof fresh[0].audioLevel === "number" ? fresh[0].audioLevel : 0;
  }

  function measure(micLevel, agentLevel) {
    const now = performance.now();
    call.audioState = audioCtx ? audioCtx.state : "closed"; // "running" when the meters are live
    const mic = micLevel();
    call.mic.level = mic;
    call.mic.peak = Math.max(call.mic.peak, mic);
    if (mic > LOUD) call.mic.lastLoudAt = now;
    $("mic-level").style.width = Math.min(100, Math.round(mic * 400)) + "%";
    const agent = agentLevel == null ? 0 : agentLevel;
    $("agent-level").style.width = Math.min(100, Math.round(agent * 400)) + "%";
    call.agentAudio.peak = Math.max(call.agentAudio.peak, agent);
    if (agent > LOUD) {
      call.agentAudio.loudMs += TICK_MS;
      if (call.agentAudio.firstAt === null) call.agentAudio.firstAt = now;
      if (!agentLoud && now - agentQuietSince > 300) {
        // A turn: the caller finished speaking (quiet for a moment), then the agent started.
        const speechEnd = call.mic.lastLoudAt;
        if (speechEnd !== null && now - speechEnd >= 200 &&
            (call.turns.length === 0 || speechEnd > call.turns[call.turns.length - 1].agentStart)) {
          call.turns.push({ speechEnd, agentStart: now, latency: now - speechEnd });
        }
      }
      agentLoud = true;
    } else {
      if (agentLoud) agentQuietSince = now;
      agentLoud = false;
    }
  }

  // --- avatar (Tavus conversational video over Daily) ---------------------------------------------
  function loadScript(src) {
    if (window.Daily) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.crossOrigin = "anonymous";
      s.onload = () => (window.Daily ? resolve() : reject(new Error("no Daily client")));
      s.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(s);
    });
  }

  function startAvatar(info) {
    leaveAvatar();
    if (!info.conversation_url || !info.daily_js) return;
    call.avatar.status = "starting";
    const mine = { frame: null, conversationId: info.conversation_id, joined: false };
    avatar = mine;
    const give_up = setTimeout(() => { if (avatar === mine && !mine.joined) avatarFailed(); }, 15000);
    loadScript(info.daily_js).then(() => {
      if (avatar !== mine) return;
      const frame = window.Daily.createFrame($("avatar"), {
        showLeaveButton: false, showFullscreenButton: false,
        iframeStyle: { width: "100%", height: "100%", border: "0" },
      });
      mine.frame = frame;
      frame.on("joined-meeting", () => {
        if (avatar !== mine) return;
        clearTimeout(give_up);
        mine.joined = true; // the face takes over the voice at the agent's next sentence
        call.avatar.status = "live";
        $("avatar").hidden = false;
      });
      for (const failure of ["error", "left-meeting", "load-attempt-failed", "nonfatal-error"]) {
        frame.on(failure, () => { if (avatar === mine && failure !== "nonfatal-error") avatarFailed(); });
      }
      return frame.join({ url: info.conversation_url, startVideoOff: true, startAudioOff: true });
    }).catch(() => { if (avatar === mine) avatarFailed(); });
  }

  function avatarFailed() {
    call.avatar.status = "failed";
    leaveAvatar();
  }

  function leaveAvatar() {
    const current = avatar;
    avatar = null;
    $("agent-audio").muted = false; // audio only again
    $("avatar").hidden = true;
    if (current && current.frame) {
      try { current.frame.leave(); current.frame.destroy(); } catch (e) { /* already gone */ }
    }
    $("avatar").textContent = "";
  }

  function sendToAvatar(message) {
    if (!avatar || !avatar.joined) return false;
    try { avatar.frame.sendAppMessage(message, "*"); return true; } catch (e) { avatarFailed(); return false; }
  }

  function echoToAvatar(text) {
    if (!avatar || !avatar.joined) return;
    // From a sentence boundary on, the face says the agent's words and the agent's own audio is
    // muted (never mid-sentence: nothing is said twice or cut).
    $("agent-audio").muted = true;
    if (sendToAvatar({
      message_type: "conversation", event_type: "conversation.echo", conversation_id: avatar && avatar.conversationId,
      properties: { modality: "text", text },
    })) call.avatar.echoes += 1;
  }

  function interruptAvatar() {
    if (sendToAvatar({ message_type: "conversation", event_type: "conversation.interrupt",
      conversation_id: avatar && avatar.conversationId })) call.avatar.interrupts += 1;
  }

  // --- page ------------------------------------------------------------------------------------------
  function resetView() {
    Object.assign(call, { callId: null, result: null, reason: null, persona: null, personaName: null,
      handoffs: [], transcript: [], events: [], error: null, turns: [],
      agentAudio: { peak: 0, loudMs: 0, firstAt: null }, mic: { peak: 0, level: 0, lastLoudAt: null },
      avatar: { status: "none", echoes: 0, interrupts: 0 } });
    $("transcript").textContent = "";
    $("handoffs").textContent = "";
    $("persona").textContent = "—";
    $("result").hidden = true;
  }

  $("call").addEventListener("click", startCall);
  $("hangup").addEventListener("click", hangUp);
  $("keypad").addEventListener("click", (e) => {
    const digit = e.target && e.target.textContent;
    if (e.target.tagName === "BUTTON" && channel && channel.readyState === "open") {
      channel.send(JSON.stringify({ type: "dtmf", digit }));
    }
  });
  window.addEventListener("pagehide", () => {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "hangup" }));
    if (pc) pc.close();
  });
  loadTargets();
})();
