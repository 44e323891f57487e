//! The HTTP side: one hyper server on 127.0.0.0/8 serving Jicofo (`/jicofo/...`), every Jibri
//! (`/jibri/{id}/...`) and the control API (`/control/...`), and one listener per recorder that
//! has an address (its instance's private IP, in 127.0.0.0/8) at that address and the main
//! port, open exactly while its Jibri runs; each connection in its own task.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::pending;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::bridge::{
    BridgeCall, BridgeEffects, BridgeUpdate, BridgeView, Conference, ConferenceRequest,
};
use crate::fault::{Fault, FaultKind, HUGE_PADDING_BYTES};
use crate::follow::{self, FollowConfig, FollowView};
use crate::model::{
    FinalizeTimer, ModelError, RecorderCall, RecorderCalls, RecorderUpdate, RecorderView,
    ShardCall, ShardUpdate, ShardView, World, DEFAULT_SHARD,
};
use crate::render;
use crate::{control, Error, StateView};

/// Largest request body read (control JSON is tiny; Jitsi requests have none).
const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// What a misbehaving server sends with [`FaultKind::Garbage`].
const GARBAGE_BODY: &str = "<html><body><h1>502 Bad Gateway</h1></body></html>\n";

/// How the emulator runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Write one line per control action (and per Jibri shutdown request) to stderr.
    pub log_actions: bool,
}

/// The running follower of an Auto Scaling group.
struct Follower {
    task: JoinHandle<()>,
    view: Arc<Mutex<FollowView>>,
}

/// One recorder's own listener: the socket is dropped (closed) synchronously by whoever takes
/// it out of `socket`, so that a Jibri that exited refuses the very next connect.
struct RecorderListener {
    address: Ipv4Addr,
    target: Target,
    socket: Arc<Mutex<Option<TcpListener>>>,
    task: JoinHandle<()>,
}

/// Whose process a per-instance listener stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Jibri(Arc<str>),
    Bridge(Arc<str>),
}

/// State shared by the accept loop, every connection, timers and handles.
pub(crate) struct Shared {
    world: Mutex<World>,
    options: Options,
    runtime: tokio::runtime::Handle,
    shutdown: watch::Sender<bool>,
    follower: Mutex<Option<Follower>>,
    /// The port every recorder's own listener binds on its address (the main port).
    jibri_port: u16,
    listeners: Mutex<BTreeMap<String, RecorderListener>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves once the emulator is told to stop.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Shared {
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }

    pub(crate) fn log(&self, line: impl FnOnce() -> String) {
        if self.options.log_actions {
            eprintln!("jitsi-emulator: {}", line());
        }
    }

    fn logged<T>(&self, action: &str, result: Result<T, ModelError>) -> Result<T, ModelError> {
        match &result {
            Ok(_) => self.log(|| format!("{action}: ok")),
            Err(e) => self.log(|| format!("{action}: {e}")),
        }
        result
    }

    /// Opens or closes each recorder's own listener to match the world: open while its Jibri
    /// runs (and no `refused` fault), closed otherwise, so a connect to an exited Jibri is
    /// refused by the kernel (ECONNREFUSED) exactly as on a real instance. Called after every
    /// change to the world.
    pub(crate) fn sync_listeners(self: &Arc<Self>) {
        let wanted: BTreeMap<String, (Ipv4Addr, Target)> = {
            let w = self.world();
            let recorders = w.recorders().filter(|r| r.listens()).filter_map(|r| {
                r.address()
                    .map(|a| (r.id().to_owned(), (a, Target::Jibri(r.id().into()))))
            });
            let bridges = w.bridges().filter(|b| b.listens()).filter_map(|b| {
                b.address()
                    .map(|a| (b.id().to_owned(), (a, Target::Bridge(b.id().into()))))
            });
            recorders.chain(bridges).collect()
        };
        let mut listeners = lock(&self.listeners);
        let stale: Vec<String> = listeners
            .iter()
            .filter(|(id, l)| wanted.get(*id) != Some(&(l.address, l.target.clone())))
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale {
            if let Some(l) = listeners.remove(&id) {
                let address = l.address;
                close_listener(l);
                self.log(|| format!("jibri {id}: {address}:{} closed", self.jibri_port));
            }
        }
        for (id, (address, target)) in wanted {
            if listeners.contains_key(&id) {
                continue;
            }
            match self.bind_recorder(target, address) {
                Ok(l) => {
                    listeners.insert(id, l);
                }
                Err(e) => self.log(|| {
                    format!(
                        "jibri {id}: cannot listen on {address}:{}: {e} (connects are refused)",
                        self.jibri_port
                    )
                }),
            }
        }
    }

    fn bind_recorder(
        self: &Arc<Self>,
        target: Target,
        address: Ipv4Addr,
    ) -> std::io::Result<RecorderListener> {
        let _entered = self.runtime.enter();
        let std_listener = std::net::TcpListener::bind((address, self.jibri_port))?;
        std_listener.set_nonblocking(true)?;
        let socket = Arc::new(Mutex::new(Some(TcpListener::from_std(std_listener)?)));
        let task = self.runtime.spawn(recorder_accept_loop(
            Arc::clone(&socket),
            Arc::clone(self),
            target.clone(),
        ));
        Ok(RecorderListener {
            address,
            target,
            socket,
            task,
        })
    }

    fn close_all_listeners(&self) {
        let all = std::mem::take(&mut *lock(&self.listeners));
        for (_, l) in all {
            close_listener(l);
        }
    }

    fn schedule_finalize(self: &Arc<Self>, timer: Option<FinalizeTimer>) {
        let Some(timer) = timer else { return };
        let shared = Arc::clone(self);
        let mut shutdown = self.shutdown.subscribe();
        self.runtime.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(timer.after_ms)) => {
                    if shared.world().finish_finalize_timer(&timer) {
                        shared.log(|| format!("recorder {}: finalize finished", timer.recorder));
                    }
                    shared.sync_listeners();
                }
                _ = stopped(&mut shutdown) => {}
            }
        });
    }

    // ---- operations shared by the control API and the Rust handle ---------------------------

    pub(crate) fn state(&self) -> StateView {
        let follow = lock(&self.follower).as_ref().map(|f| lock(&f.view).clone());
        let w = self.world();
        StateView {
            shards: w.shard_views(),
            recorders: w.recorder_views(),
            follow,
            bridges: w.bridge_views(),
            conferences: w.conferences().cloned().collect(),
        }
    }

    pub(crate) fn recorder(&self, id: &str) -> Result<RecorderView, ModelError> {
        self.world()
            .recorder(id)
            .map(|r| r.view())
            .ok_or_else(|| ModelError::UnknownRecorder(id.to_owned()))
    }

    pub(crate) fn shard(&self, name: &str) -> Result<ShardView, ModelError> {
        self.world()
            .shard_view(name)
            .ok_or_else(|| ModelError::UnknownShard(name.to_owned()))
    }

    pub(crate) fn set_recorder(
        self: &Arc<Self>,
        id: &str,
        update: &RecorderUpdate,
    ) -> Result<(RecorderView, bool), ModelError> {
        let result = self.world().upsert_recorder(id, update);
        self.sync_listeners();
        let what = match &result {
            Ok((_, true)) => "created",
            _ => "updated",
        };
        self.logged(
            &format!(
                "recorder {id}: {what} {}",
                serde_json::to_string(update).unwrap_or_default()
            ),
            result,
        )
    }

    pub(crate) fn delete_recorder(self: &Arc<Self>, id: &str) -> Result<(), ModelError> {
        let result = self.world().delete_recorder(id);
        self.sync_listeners();
        self.logged(&format!("recorder {id}: deleted"), result)
    }

    pub(crate) fn start_recording(&self, id: &str) -> Result<RecorderView, ModelError> {
        let result = self.world().start_recording(id);
        self.logged(&format!("recorder {id}: start-recording"), result)
    }

    pub(crate) fn stop_recording(self: &Arc<Self>, id: &str) -> Result<RecorderView, ModelError> {
        let result = {
            let mut w = self.world();
            w.stop_recording(id)
                .map(|timer| (timer, w.recorder(id).map(|r| r.view())))
        };
        self.sync_listeners();
        let result = result.and_then(|(timer, view)| {
            self.schedule_finalize(timer);
            view.ok_or_else(|| ModelError::UnknownRecorder(id.to_owned()))
        });
        self.logged(&format!("recorder {id}: stop-recording"), result)
    }

    pub(crate) fn finish_finalize(self: &Arc<Self>, id: &str) -> Result<RecorderView, ModelError> {
        let result = self.world().finish_finalize(id);
        self.sync_listeners();
        self.logged(&format!("recorder {id}: finish-finalize"), result)
    }

    pub(crate) fn restart(self: &Arc<Self>, id: &str) -> Result<RecorderView, ModelError> {
        let result = self.world().restart(id);
        self.sync_listeners();
        self.logged(&format!("recorder {id}: restart"), result)
    }

    pub(crate) fn set_recorder_fault(
        self: &Arc<Self>,
        id: &str,
        fault: Fault,
    ) -> Result<RecorderView, ModelError> {
        let result = self.world().set_recorder_fault(id, fault);
        self.sync_listeners();
        self.logged(
            &format!("recorder {id}: fault {}", fault.kind.as_str()),
            result,
        )
    }

    pub(crate) fn calls(&self, id: &str) -> Result<RecorderCalls, ModelError> {
        self.recorder(id).map(|r| r.calls)
    }

    pub(crate) fn request_recording(&self, shard: &str) -> Result<String, ModelError> {
        let result = self.world().request_recording(shard);
        self.logged(&format!("jicofo {shard}: request-recording"), result)
    }

    pub(crate) fn set_shard(
        &self,
        name: &str,
        update: &ShardUpdate,
    ) -> Result<(ShardView, bool), ModelError> {
        let result = self.world().upsert_shard(name, update);
        self.logged(
            &format!(
                "jicofo {name}: set {}",
                serde_json::to_string(update).unwrap_or_default()
            ),
            result,
        )
    }

    pub(crate) fn set_shard_fault(
        &self,
        name: &str,
        fault: Fault,
    ) -> Result<ShardView, ModelError> {
        let result = self.world().set_shard_fault(name, fault);
        self.logged(
            &format!("jicofo {name}: fault {}", fault.kind.as_str()),
            result,
        )
    }

    // ---- videobridges ---------------------------------------------------------------------

    pub(crate) fn bridge(&self, id: &str) -> Result<BridgeView, ModelError> {
        self.world()
            .bridge_view(id)
            .ok_or_else(|| ModelError::UnknownBridge(id.to_owned()))
    }

    pub(crate) fn set_bridge(
        self: &Arc<Self>,
        id: &str,
        update: &BridgeUpdate,
    ) -> Result<BridgeView, ModelError> {
        let result = self.world().upsert_bridge(id, update, now_ms());
        self.sync_listeners();
        self.logged(
            &format!(
                "bridge {id}: set {}",
                serde_json::to_string(update).unwrap_or_default()
            ),
            result.map(|(v, _)| v),
        )
    }

    pub(crate) fn delete_bridge(self: &Arc<Self>, id: &str) -> Result<(), ModelError> {
        let result = self.world().delete_bridge(id, now_ms());
        self.sync_listeners();
        self.logged(&format!("bridge {id}: deleted"), result)
    }

    pub(crate) fn restart_bridge(self: &Arc<Self>, id: &str) -> Result<BridgeView, ModelError> {
        let result = self.world().restart_bridge(id, now_ms());
        self.sync_listeners();
        self.logged(&format!("bridge {id}: restart"), result)
    }

    pub(crate) fn set_bridge_fault(
        self: &Arc<Self>,
        id: &str,
        fault: Fault,
    ) -> Result<BridgeView, ModelError> {
        let result = self.world().set_bridge_fault(id, fault);
        self.sync_listeners();
        self.logged(
            &format!("bridge {id}: fault {}", fault.kind.as_str()),
            result,
        )
    }

    pub(crate) fn start_conference(
        self: &Arc<Self>,
        shard: &str,
        req: &ConferenceRequest,
    ) -> Result<Conference, ModelError> {
        let result = self.world().start_conference(shard, req, now_ms());
        if let (Ok(c), Some(d)) = (&result, req.duration_ms) {
            let shared = Arc::clone(self);
            let mut shutdown = self.shutdown.subscribe();
            let id = c.id.clone();
            self.runtime.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(d)) => {
                        let fx = shared.world().end_due_conferences(now_ms());
                        shared.log(|| format!("conference {id}: ended (its duration is over)"));
                        shared.bridges_exited(&fx);
                    }
                    _ = stopped(&mut shutdown) => {}
                }
            });
        }
        self.logged(
            &format!(
                "jicofo {shard}: conference of {} participants",
                req.participants
            ),
            result,
        )
    }

    pub(crate) fn end_conference(self: &Arc<Self>, id: &str) -> Result<Conference, ModelError> {
        let result = {
            let mut w = self.world();
            w.end_conference(id, now_ms()).and_then(|fx| {
                w.conferences()
                    .find(|c| c.id == id)
                    .cloned()
                    .map(|c| (c, fx))
                    .ok_or_else(|| ModelError::UnknownConference(id.to_owned()))
            })
        };
        if let Ok((_, fx)) = &result {
            self.bridges_exited(fx);
        }
        self.logged(&format!("conference {id}: end"), result.map(|(c, _)| c))
    }

    /// Closes the listeners of bridges whose process exited.
    fn bridges_exited(self: &Arc<Self>, fx: &BridgeEffects) {
        self.sync_listeners();
        for id in &fx.exited {
            self.log(|| format!("bridge {id}: exited"));
        }
    }

    pub(crate) fn reset(&self) {
        self.stop_following();
        self.world().reset();
        self.close_all_listeners();
        self.log(|| "reset".to_owned());
    }

    pub(crate) fn follow(self: &Arc<Self>, config: FollowConfig) -> Result<(), Error> {
        let url = config.validate().map_err(Error::Follow)?;
        if let Some(shard) = &config.shard {
            // Fail now rather than on every poll.
            let mut probe = World::new(0);
            probe.sync_with_group(&[], shard)?;
        }
        let client = follow::client().map_err(Error::Follow)?;
        let view = Arc::new(Mutex::new(FollowView {
            config: config.clone(),
            polls: 0,
            failures: 0,
            last_error: None,
            instances: Vec::new(),
        }));
        let shared = Arc::clone(self);
        let task_view = Arc::clone(&view);
        let mut shutdown = self.shutdown.subscribe();
        let task = self.runtime.spawn(async move {
            let shard = config
                .shard
                .clone()
                .unwrap_or_else(|| DEFAULT_SHARD.to_owned());
            // An instance keeps its private IP for life: each is asked for once.
            let mut private_ips: BTreeMap<String, String> = BTreeMap::new();
            loop {
                let polled = match follow::describe_group(&client, &url, &config).await {
                    Ok(mut instances) => {
                        let unknown: Vec<&str> = instances
                            .iter()
                            .filter(|i| !private_ips.contains_key(&i.id))
                            .map(|i| i.id.as_str())
                            .collect();
                        match follow::describe_private_ips(&client, &url, &config, &unknown).await {
                            Ok(found) => {
                                private_ips.extend(found);
                                for i in &mut instances {
                                    i.private_ip = private_ips.get(&i.id).cloned();
                                }
                                Ok(instances)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(e),
                };
                {
                    let mut v = lock(&task_view);
                    v.polls += 1;
                    match polled {
                        Ok(instances) => {
                            let synced = if config.bridges() {
                                shared
                                    .world()
                                    .sync_bridges_with_group(&instances, &shard, now_ms())
                            } else {
                                shared.world().sync_with_group(&instances, &shard)
                            };
                            shared.sync_listeners();
                            match synced {
                                Ok(sync) => {
                                    for id in &sync.added {
                                        shared.log(|| {
                                            format!(
                                                "follow {}: {id} InService, recorder added",
                                                config.group
                                            )
                                        });
                                    }
                                    for id in &sync.removed {
                                        shared.log(|| {
                                            format!(
                                                "follow {}: {id} left the group, recorder removed",
                                                config.group
                                            )
                                        });
                                    }
                                    v.last_error = None;
                                }
                                Err(e) => v.last_error = Some(e.to_string()),
                            }
                            v.instances = instances;
                        }
                        Err(e) => {
                            v.failures += 1;
                            if v.last_error.as_deref() != Some(e.as_str()) {
                                shared.log(|| format!("follow {}: {e}", config.group));
                            }
                            v.last_error = Some(e);
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(config.interval()) => {}
                    _ = stopped(&mut shutdown) => return,
                }
            }
        });
        if let Some(old) = lock(&self.follower).replace(Follower { task, view }) {
            old.task.abort();
        }
        self.log(|| "follow: started".to_owned());
        Ok(())
    }

    pub(crate) fn stop_following(&self) {
        if let Some(old) = lock(&self.follower).take() {
            old.task.abort();
            self.log(|| "follow: stopped".to_owned());
        }
    }
}

/// Starts emulators.
pub struct Emulator;

impl Emulator {
    /// Starts an emulator on `listen` (e.g. `127.0.0.1:0`), which must be in 127.0.0.0/8.
    pub async fn start(listen: &str) -> Result<EmulatorHandle, Error> {
        Self::start_with(listen, Options::default()).await
    }

    /// [`Emulator::start`] with options.
    pub async fn start_with(listen: &str, options: Options) -> Result<EmulatorHandle, Error> {
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| Error::NotLoopback(listen.to_owned()))?;
        match addr.ip() {
            IpAddr::V4(ip) if ip.octets()[0] == 127 => {}
            _ => return Err(Error::NotLoopback(listen.to_owned())),
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: listen.to_owned(),
                source,
            })?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            addr: listen.to_owned(),
            source,
        })?;
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(now_ms())),
            options,
            runtime: tokio::runtime::Handle::current(),
            shutdown,
            follower: Mutex::new(None),
            jibri_port: local.port(),
            listeners: Mutex::new(BTreeMap::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(EmulatorHandle {
            shared,
            addr: local,
            accept: Arc::new(Mutex::new(Some(accept))),
        })
    }
}

/// A running emulator. Cloning shares it; [`EmulatorHandle::shutdown`] stops it for all clones.
#[derive(Clone)]
pub struct EmulatorHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for EmulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorHandle")
            .field("addr", &self.addr)
            .finish()
    }
}

impl EmulatorHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of one Jicofo shard: append `/stats`, `/about/health`, `/about/version`.
    pub fn jicofo_url(&self, shard: &str) -> String {
        format!("{}/jicofo/{shard}", self.url())
    }

    /// Base URL of one Jibri on the path-routed listener: append `/jibri/api/v1.0/health` or
    /// `/jibri/api/internal/v1.0/...`. A Jibri that exited answers here with a connection reset
    /// (one shared listener cannot refuse per recorder); see [`EmulatorHandle::jibri_port`].
    pub fn jibri_url(&self, id: &str) -> String {
        format!("{}/jibri/{id}", self.url())
    }

    /// The port each recorder with an address listens on at that address while its Jibri runs
    /// (the production shape: `http://{private_ip}:{jibri_port}/jibri/api/v1.0/health`); once
    /// its Jibri exited, a connect there is refused.
    pub fn jibri_port(&self) -> u16 {
        self.shared.jibri_port
    }

    /// All shards, recorders and the follower, as `GET /control/state` shows them.
    pub fn state(&self) -> StateView {
        self.shared.state()
    }

    pub fn recorder(&self, id: &str) -> Option<RecorderView> {
        self.shared.recorder(id).ok()
    }

    pub fn shard(&self, name: &str) -> Option<ShardView> {
        self.shared.shard(name).ok()
    }

    /// Creates or updates a recorder (`PUT /control/recorders/{id}`).
    pub fn set_recorder(&self, id: &str, update: RecorderUpdate) -> Result<RecorderView, Error> {
        Ok(self.shared.set_recorder(id, &update)?.0)
    }

    /// Creates an idle, healthy, registered recorder on the default shard (or leaves it as is).
    pub fn add_recorder(&self, id: &str) -> Result<RecorderView, Error> {
        self.set_recorder(id, RecorderUpdate::default())
    }

    pub fn delete_recorder(&self, id: &str) -> Result<(), Error> {
        Ok(self.shared.delete_recorder(id)?)
    }

    pub fn start_recording(&self, id: &str) -> Result<RecorderView, Error> {
        Ok(self.shared.start_recording(id)?)
    }

    pub fn stop_recording(&self, id: &str) -> Result<RecorderView, Error> {
        Ok(self.shared.stop_recording(id)?)
    }

    pub fn finish_finalize(&self, id: &str) -> Result<RecorderView, Error> {
        Ok(self.shared.finish_finalize(id)?)
    }

    pub fn restart(&self, id: &str) -> Result<RecorderView, Error> {
        Ok(self.shared.restart(id)?)
    }

    pub fn set_recorder_fault(
        &self,
        id: &str,
        fault: impl Into<Fault>,
    ) -> Result<RecorderView, Error> {
        Ok(self.shared.set_recorder_fault(id, fault.into())?)
    }

    /// Requests received on the recorder's Jibri paths.
    pub fn calls(&self, id: &str) -> Result<RecorderCalls, Error> {
        Ok(self.shared.calls(id)?)
    }

    /// A recording request to `shard`'s Jicofo; `Err(Error::Model(ModelError::NoJibriAvailable))`
    /// when Jicofo would refuse it.
    pub fn request_recording(&self, shard: &str) -> Result<String, Error> {
        Ok(self.shared.request_recording(shard)?)
    }

    /// Creates or updates a shard (`PUT /control/jicofo/{shard}`).
    pub fn set_shard(&self, name: &str, update: ShardUpdate) -> Result<ShardView, Error> {
        Ok(self.shared.set_shard(name, &update)?.0)
    }

    pub fn set_jicofo_fault(
        &self,
        shard: &str,
        fault: impl Into<Fault>,
    ) -> Result<ShardView, Error> {
        Ok(self.shared.set_shard_fault(shard, fault.into())?)
    }

    /// Back to a fresh emulator (default shard only, no recorders, not following).
    pub fn reset(&self) {
        self.shared.reset()
    }

    /// Starts (or replaces) following an Auto Scaling group.
    pub fn follow(&self, config: FollowConfig) -> Result<(), Error> {
        self.shared.follow(config)
    }

    pub fn stop_following(&self) {
        self.shared.stop_following()
    }

    /// Base URL of one bridge on the path-routed listener: append `/colibri/stats`, ...
    pub fn jvb_url(&self, id: &str) -> String {
        format!("{}/jvb/{id}", self.url())
    }

    pub fn bridge(&self, id: &str) -> Option<BridgeView> {
        self.shared.bridge(id).ok()
    }

    /// Creates or updates a bridge (`PUT /control/bridges/{id}`); with an address it listens at
    /// `address:{jibri_port}` while its process runs.
    pub fn set_bridge(&self, id: &str, update: BridgeUpdate) -> Result<BridgeView, Error> {
        Ok(self.shared.set_bridge(id, &update)?)
    }

    /// The bridge vanishes (its instance is gone): its running conferences break.
    pub fn delete_bridge(&self, id: &str) -> Result<(), Error> {
        Ok(self.shared.delete_bridge(id)?)
    }

    pub fn restart_bridge(&self, id: &str) -> Result<BridgeView, Error> {
        Ok(self.shared.restart_bridge(id)?)
    }

    pub fn set_bridge_fault(&self, id: &str, fault: impl Into<Fault>) -> Result<BridgeView, Error> {
        Ok(self.shared.set_bridge_fault(id, fault.into())?)
    }

    /// A conference starts on `shard`, on the bridge Jicofo selects;
    /// `Err(Error::Model(ModelError::NoBridgeAvailable))` when none can host it.
    pub fn start_conference(
        &self,
        shard: &str,
        req: ConferenceRequest,
    ) -> Result<Conference, Error> {
        Ok(self.shared.start_conference(shard, &req)?)
    }

    /// Its participants leave.
    pub fn end_conference(&self, id: &str) -> Result<Conference, Error> {
        Ok(self.shared.end_conference(id)?)
    }

    /// Every conference, running or over.
    pub fn conferences(&self) -> Vec<Conference> {
        self.shared.state().conferences
    }

    /// Stops accepting, drops every connection (hung ones included), timers and the follower.
    pub async fn shutdown(&self) {
        self.shared.stop_following();
        self.shared.close_all_listeners();
        self.shared.shutdown.send_replace(true);
        let accept = lock(&self.accept).take();
        if let Some(accept) = accept {
            let _ = accept.await;
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared), None));
                }
                Err(e) => {
                    // Typically EMFILE: back off rather than spin.
                    shared.log(|| format!("accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Accepts on one recorder's own listener until it is taken away (closed).
async fn recorder_accept_loop(
    socket: Arc<Mutex<Option<TcpListener>>>,
    shared: Arc<Shared>,
    target: Target,
) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let accepted = std::future::poll_fn(|cx| match lock(&socket).as_ref() {
            None => Poll::Ready(None),
            Some(l) => l.poll_accept(cx).map(Some),
        });
        tokio::select! {
            accepted = accepted => match accepted {
                None => return,
                Some(Ok((stream, _peer))) => {
                    tokio::spawn(serve_connection(stream, Arc::clone(&shared), Some(target.clone())));
                }
                Some(Err(e)) => {
                    shared.log(|| format!("{target:?}: accept: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// Closes a recorder's listener now (the kernel refuses the next connect), then ends its task.
fn close_listener(l: RecorderListener) {
    drop(lock(&l.socket).take());
    l.task.abort();
}

/// Per-connection switch a handler flips to have the connection reset (RST) instead of answered.
struct ConnCtl {
    reset: AtomicBool,
    notify: Notify,
}

impl ConnCtl {
    fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The connection's socket; when dropped after a reset request it closes with `SO_LINGER` 0, so
/// the kernel sends RST as a dead process's socket would, instead of an orderly FIN.
struct ResettableStream {
    stream: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.ctl.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves one connection: on the main listener (`recorder` None) every path, on a recorder's
/// own listener only that Jibri's paths, as `/jibri/api/...`.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, recorder: Option<Target>) {
    let _ = stream.set_nodelay(true);
    let ctl = Arc::new(ConnCtl {
        reset: AtomicBool::new(false),
        notify: Notify::new(),
    });
    let io = TokioIo::new(ResettableStream {
        stream,
        ctl: Arc::clone(&ctl),
    });
    let service_shared = Arc::clone(&shared);
    let service_ctl = Arc::clone(&ctl);
    let service = service_fn(move |req| {
        let shared = Arc::clone(&service_shared);
        let ctl = Arc::clone(&service_ctl);
        let recorder = recorder.clone();
        async move { Ok::<_, Infallible>(handle(req, shared, ctl, recorder).await) }
    });
    let conn = http1::Builder::new().serve_connection(io, service);
    let mut shutdown = shared.shutdown.subscribe();
    // Dropping `conn` drops the socket: on reset with SO_LINGER 0 (RST), on shutdown normally.
    tokio::select! {
        _ = conn => {}
        _ = ctl.notify.notified() => {}
        _ = stopped(&mut shutdown) => {}
    }
}

/// How a request ends.
enum Outcome {
    Respond(Response<EmuBody>),
    /// Reset the connection (a dead process, or the `refused` fault).
    Reset,
    /// Never answer (the `hang` fault).
    Hang,
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    ctl: Arc<ConnCtl>,
    recorder: Option<Target>,
) -> Response<EmuBody> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_REQUEST_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large or unreadable",
            )
        }
    };
    let path = parts.uri.path();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let outcome = match (&recorder, segments.split_first()) {
        (Some(Target::Jibri(id)), _) => {
            let mut rest = vec![&**id];
            rest.extend_from_slice(&segments);
            jibri(&shared, &parts.method, &rest).await
        }
        (Some(Target::Bridge(id)), _) => {
            let mut rest = vec![&**id];
            rest.extend_from_slice(&segments);
            jvb(&shared, &parts.method, &rest, &body).await
        }
        (None, Some((&"jvb", rest))) => jvb(&shared, &parts.method, rest, &body).await,
        (None, Some((&"control", rest))) => {
            Outcome::Respond(control::handle(&shared, &parts.method, rest, &body))
        }
        (None, Some((&"jibri", rest))) => jibri(&shared, &parts.method, rest).await,
        (None, Some((&"jicofo", rest))) => jicofo(&shared, &parts.method, rest).await,
        _ => Outcome::Respond(text(StatusCode::NOT_FOUND, "not found")),
    };
    match outcome {
        Outcome::Respond(resp) => resp,
        Outcome::Reset => {
            ctl.reset();
            pending().await
        }
        Outcome::Hang => pending().await,
    }
}

/// A fault's effect before the normal answer: `None` means answer normally now.
async fn apply_fault(fault: Fault, huge_tail: impl FnOnce() -> String) -> Option<Outcome> {
    match fault.kind {
        FaultKind::None => None,
        FaultKind::Slow => {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms())).await;
            None
        }
        FaultKind::Hang => Some(Outcome::Hang),
        // `refused` closes a recorder's own listener (see `Shared::sync_listeners`); what still
        // reaches the path-routed listener, or a connection accepted just before, is reset.
        FaultKind::Refused | FaultKind::Reset => Some(Outcome::Reset),
        FaultKind::Http500 => Some(Outcome::Respond(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
        ))),
        FaultKind::Garbage => Some(Outcome::Respond(respond(
            StatusCode::OK,
            Some("application/json"),
            EmuBody::full(GARBAGE_BODY),
        ))),
        FaultKind::Huge => Some(Outcome::Respond(respond(
            StatusCode::OK,
            Some("application/json"),
            EmuBody::padded(HUGE_PADDING_BYTES, huge_tail()),
        ))),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum JibriEndpoint {
    Health,
    GracefulShutdown,
    Shutdown,
}

impl JibriEndpoint {
    fn parse(rest: &[&str]) -> Option<Self> {
        match rest {
            ["jibri", "api", "v1.0", "health"] => Some(JibriEndpoint::Health),
            ["jibri", "api", "internal", "v1.0", "gracefulShutdown"] => {
                Some(JibriEndpoint::GracefulShutdown)
            }
            ["jibri", "api", "internal", "v1.0", "shutdown"] => Some(JibriEndpoint::Shutdown),
            _ => None,
        }
    }
    fn method(self) -> Method {
        match self {
            JibriEndpoint::Health => Method::GET,
            JibriEndpoint::GracefulShutdown | JibriEndpoint::Shutdown => Method::POST,
        }
    }
    fn call(self) -> RecorderCall {
        match self {
            JibriEndpoint::Health => RecorderCall::Health,
            JibriEndpoint::GracefulShutdown => RecorderCall::GracefulShutdown,
            JibriEndpoint::Shutdown => RecorderCall::Shutdown,
        }
    }
}

/// `/jibri/{id}/...`: an unknown or gone recorder is a dead process (connection reset); a fault
/// applies before anything else; a faulted request has no side effect (except `slow`, which
/// answers normally once the delay is over).
async fn jibri(shared: &Arc<Shared>, method: &Method, rest: &[&str]) -> Outcome {
    let Some((&id, tail)) = rest.split_first() else {
        return Outcome::Respond(text(StatusCode::NOT_FOUND, "not found"));
    };
    let endpoint = JibriEndpoint::parse(tail).filter(|e| e.method() == *method);
    let fault = {
        let mut w = shared.world();
        let Some(r) = w.recorder(id) else {
            return Outcome::Reset;
        };
        let fault = r.fault();
        if let Some(e) = endpoint {
            w.record_recorder_call(id, e.call());
        }
        fault
    };
    let huge_tail = || match endpoint {
        Some(JibriEndpoint::Health) => shared
            .world()
            .recorder(id)
            .map(render::jibri_health)
            .unwrap_or_default(),
        _ => String::new(),
    };
    if let Some(outcome) = apply_fault(fault, huge_tail).await {
        return outcome;
    }

    let mut w = shared.world();
    match w.recorder(id) {
        Some(r) if !r.is_gone() => {}
        _ => return Outcome::Reset,
    }
    let ok_empty = || Outcome::Respond(respond(StatusCode::OK, None, EmuBody::empty()));
    match endpoint {
        Some(JibriEndpoint::Health) => {
            let body = w.recorder(id).map(render::jibri_health).unwrap_or_default();
            Outcome::Respond(respond(
                StatusCode::OK,
                Some("application/json"),
                EmuBody::full(body),
            ))
        }
        Some(JibriEndpoint::GracefulShutdown) => {
            let result = w.graceful_shutdown(id);
            let exited = w.recorder(id).is_some_and(|r| r.is_gone());
            drop(w);
            // An idle Jibri exits before the answer is read: its port is closed by then.
            shared.sync_listeners();
            shared.log(|| match (result, exited) {
                (Err(e), _) => format!("jibri {id}: gracefulShutdown: {e}"),
                (Ok(()), true) => format!("jibri {id}: gracefulShutdown: idle, exited"),
                (Ok(()), false) => {
                    format!("jibri {id}: gracefulShutdown: busy, exits after its session")
                }
            });
            ok_empty()
        }
        Some(JibriEndpoint::Shutdown) => {
            let result = w.shutdown(id);
            drop(w);
            shared.sync_listeners();
            shared.log(|| {
                format!(
                    "jibri {id}: shutdown: {}",
                    if result.is_ok() { "stopping" } else { "gone" }
                )
            });
            if let Ok(timer) = result {
                shared.schedule_finalize(timer);
            }
            ok_empty()
        }
        None if JibriEndpoint::parse(tail).is_some() => {
            Outcome::Respond(text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"))
        }
        None => Outcome::Respond(text(StatusCode::NOT_FOUND, "Not Found")),
    }
}

/// `/jicofo/stats`, `/jicofo/metrics` (default shard) and `/jicofo/{shard}/...`: an unknown shard
/// is a Jicofo that is not there (connection reset).
async fn jicofo(shared: &Arc<Shared>, method: &Method, rest: &[&str]) -> Outcome {
    let (shard, tail): (&str, &[&str]) = match rest {
        ["stats"] | ["metrics"] => (DEFAULT_SHARD, rest),
        [shard, tail @ ..] if !tail.is_empty() => (*shard, tail),
        _ => return Outcome::Respond(text(StatusCode::NOT_FOUND, "Not Found")),
    };
    let endpoint = match tail {
        ["stats"] => Some(ShardCall::Stats),
        ["about", "health"] => Some(ShardCall::Health),
        ["about", "version"] => Some(ShardCall::Version),
        ["metrics"] => Some(ShardCall::Metrics),
        _ => None,
    };
    let fault = {
        let mut w = shared.world();
        let Some(s) = w.shard(shard) else {
            return Outcome::Reset;
        };
        let fault = s.fault();
        if let Some(e) = endpoint.filter(|_| *method == Method::GET) {
            w.record_shard_call(shard, e);
        }
        fault
    };
    let normal = |shared: &Arc<Shared>| -> Response<EmuBody> {
        let w = shared.world();
        let (Some(s), Some(snap)) = (w.shard(shard), w.jicofo_snapshot(shard)) else {
            return text(StatusCode::NOT_FOUND, "Not Found");
        };
        match (endpoint, method) {
            (Some(_), m) if *m != Method::GET => {
                text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
            }
            (Some(ShardCall::Stats), _) => respond(
                StatusCode::OK,
                Some("application/json"),
                EmuBody::full(render::jicofo_stats(&snap)),
            ),
            (Some(ShardCall::Version), _) => respond(
                StatusCode::OK,
                Some("application/json"),
                EmuBody::full(render::JICOFO_VERSION_BODY),
            ),
            (Some(ShardCall::Metrics), _) => respond(
                StatusCode::OK,
                Some("text/plain; version=0.0.4; charset=utf-8"),
                EmuBody::full(render::jicofo_metrics(&snap)),
            ),
            // Current Jicofo (ktor): `call.respond("OK")`, or the failure's code (500 for a hard
            // failure) with its message. Old builds (jersey, jicoco `Health`): empty bodies.
            (Some(ShardCall::Health), _) => match (s.is_legacy(), s.is_healthy()) {
                (false, true) => respond(
                    StatusCode::OK,
                    Some("text/plain; charset=UTF-8"),
                    EmuBody::full("OK"),
                ),
                (false, false) => respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Some("text/plain; charset=UTF-8"),
                    EmuBody::full("Unknown error."),
                ),
                (true, true) => respond(StatusCode::OK, Some("application/json"), EmuBody::empty()),
                (true, false) => respond(StatusCode::INTERNAL_SERVER_ERROR, None, EmuBody::empty()),
            },
            (None, _) => text(StatusCode::NOT_FOUND, "Not Found"),
        }
    };
    let huge_tail = || {
        let resp = normal(shared);
        match resp.into_body() {
            EmuBody::Full(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            _ => String::new(),
        }
    };
    if let Some(outcome) = apply_fault(fault, huge_tail).await {
        return outcome;
    }
    if shared.world().shard(shard).is_none() {
        return Outcome::Reset;
    }
    Outcome::Respond(normal(shared))
}

pub(crate) fn respond(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: EmuBody,
) -> Response<EmuBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if let Some(ct) = content_type {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    resp
}

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<EmuBody> {
    respond(
        status,
        Some("text/plain; charset=utf-8"),
        EmuBody::full(body),
    )
}

static PADDING: [u8; 64 * 1024] = [b' '; 64 * 1024];

/// Response bodies: a buffer, or whitespace padding streamed before a buffer (`huge`).
pub(crate) enum EmuBody {
    Full(Option<Bytes>),
    Padded {
        remaining: usize,
        tail: Option<Bytes>,
    },
}

impl EmuBody {
    pub(crate) fn empty() -> Self {
        EmuBody::Full(None)
    }

    pub(crate) fn full(body: impl Into<Bytes>) -> Self {
        let b: Bytes = body.into();
        if b.is_empty() {
            EmuBody::Full(None)
        } else {
            EmuBody::Full(Some(b))
        }
    }

    fn padded(padding: usize, tail: String) -> Self {
        EmuBody::Padded {
            remaining: padding,
            tail: (!tail.is_empty()).then(|| Bytes::from(tail)),
        }
    }
}

impl hyper::body::Body for EmuBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = match this {
            EmuBody::Full(b) => b.take(),
            EmuBody::Padded { remaining, tail } => {
                if *remaining > 0 {
                    let n = (*remaining).min(PADDING.len());
                    *remaining -= n;
                    Some(Bytes::from_static(&PADDING[..n]))
                } else {
                    tail.take()
                }
            }
        };
        Poll::Ready(next.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        matches!(
            self,
            EmuBody::Full(None)
                | EmuBody::Padded {
                    remaining: 0,
                    tail: None
                }
        )
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EmuBody::Full(None) => SizeHint::with_exact(0),
            EmuBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            // Unknown length: sent chunked, so a client cannot size it up front.
            EmuBody::Padded { .. } => SizeHint::default(),
        }
    }
}

/// The bridge endpoints as the server routes them (the same [`BridgeCall`] the world counts).
impl BridgeCall {
    /// JVB's private REST paths (`rest/root/colibri/{stats,drain,shutdown}`, `/about/health`).
    fn parse(rest: &[&str]) -> Option<Self> {
        match rest {
            ["colibri", "stats"] => Some(Self::Stats),
            ["colibri", "drain"] => Some(Self::DrainState),
            ["colibri", "drain", "enable"] => Some(Self::DrainEnable),
            ["colibri", "drain", "disable"] => Some(Self::DrainDisable),
            ["colibri", "shutdown"] => Some(Self::Shutdown),
            ["about", "health"] => Some(Self::Health),
            _ => None,
        }
    }
    fn method(self) -> Method {
        match self {
            Self::Stats | Self::DrainState | Self::Health => Method::GET,
            Self::DrainEnable | Self::DrainDisable | Self::Shutdown => Method::POST,
        }
    }
}

/// `/jvb/{id}/...` (or a bridge's own listener): as [`jibri`], an unknown or exited bridge is a
/// dead process (reset here; refused at connect on its own listener), a fault applies first.
async fn jvb(shared: &Arc<Shared>, method: &Method, rest: &[&str], body: &[u8]) -> Outcome {
    let Some((&id, tail)) = rest.split_first() else {
        return Outcome::Respond(text(StatusCode::NOT_FOUND, "not found"));
    };
    let endpoint = BridgeCall::parse(tail).filter(|e| e.method() == *method);
    let fault = {
        let mut w = shared.world();
        let Some(b) = w.bridge(id) else {
            return Outcome::Reset;
        };
        let fault = b.fault();
        if let Some(e) = endpoint {
            w.record_bridge_call(id, e);
        }
        fault
    };
    let huge_tail = || match endpoint {
        Some(BridgeCall::Stats) => shared
            .world()
            .bridge_snapshot(id, now_ms())
            .map(|s| render::colibri_stats(&s))
            .unwrap_or_default(),
        _ => String::new(),
    };
    if let Some(outcome) = apply_fault(fault, huge_tail).await {
        return outcome;
    }
    let mut w = shared.world();
    let shutdown_api = match w.bridge(id) {
        Some(b) if !b.is_gone() => b.shutdown_api,
        _ => return Outcome::Reset,
    };
    let json_body = |b: String| {
        Outcome::Respond(respond(
            StatusCode::OK,
            Some("application/json"),
            EmuBody::full(b),
        ))
    };
    // JAX-RS `Response.ok().build()`: 200, no body.
    let ok_empty = || Outcome::Respond(respond(StatusCode::OK, None, EmuBody::empty()));
    match endpoint {
        Some(BridgeCall::Stats) => json_body(
            w.bridge_snapshot(id, now_ms())
                .map(|s| render::colibri_stats(&s))
                .unwrap_or_default(),
        ),
        Some(BridgeCall::DrainState) => {
            json_body(render::colibri_drain(w.bridge(id).is_some_and(|b| b.drain)))
        }
        Some(e @ (BridgeCall::DrainEnable | BridgeCall::DrainDisable)) => {
            let enable = e == BridgeCall::DrainEnable;
            let _ = w.set_drain(id, enable);
            drop(w);
            shared.log(|| format!("bridge {id}: drain {enable}"));
            ok_empty()
        }
        // Disabled by default (`videobridge.rest.shutdown.enabled`): Jersey has no such resource.
        Some(BridgeCall::Shutdown) if !shutdown_api => {
            Outcome::Respond(text(StatusCode::NOT_FOUND, "Not Found"))
        }
        Some(BridgeCall::Shutdown) => {
            // `ShutdownJson`: `graceful-shutdown` is required (Jackson: a bad body is a 400).
            let graceful = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| match v.get("graceful-shutdown") {
                    Some(serde_json::Value::Bool(b)) => Some(*b),
                    Some(serde_json::Value::String(s)) => s.parse::<bool>().ok(),
                    _ => None,
                });
            let Some(graceful) = graceful else {
                return Outcome::Respond(text(StatusCode::BAD_REQUEST, "Bad Request"));
            };
            let fx = w.bridge_shutdown(id, graceful, now_ms());
            drop(w);
            shared.log(|| format!("bridge {id}: shutdown graceful={graceful}"));
            if let Ok(fx) = fx {
                shared.bridges_exited(&fx);
            }
            ok_empty()
        }
        Some(BridgeCall::Health) => {
            if w.bridge(id).is_some_and(|b| b.healthy) {
                ok_empty()
            } else {
                Outcome::Respond(text(StatusCode::INTERNAL_SERVER_ERROR, "unhealthy"))
            }
        }
        None if BridgeCall::parse(tail).is_some() => {
            Outcome::Respond(text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"))
        }
        None => Outcome::Respond(text(StatusCode::NOT_FOUND, "Not Found")),
    }
}
