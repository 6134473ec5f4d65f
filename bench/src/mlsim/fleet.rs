//! The simulated fleet: device profiles with daily and weekly rhythms,
//! devices of very different volume, benign nuisances and labelled attacks.
//! Everything comes from one seed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const PERIOD: i64 = 300;
pub const PER_DAY: i64 = 288;
/// 2024-06-03, a Monday.
pub const T0: i64 = 1_717_372_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rhythm {
    /// Nearly flat (meters).
    Flat,
    /// Daylight-heavy, quieter weekends (cameras).
    Daylight,
    /// Evenings, busier weekends (wearables).
    Evening,
    /// Business hours on weekdays (gateways).
    Office,
}

pub struct ProfileSpec {
    pub name: &'static str,
    pub rhythm: Rhythm,
    /// Median messages sent per datapoint at rhythm 1, and the log-spread
    /// across devices.
    pub sent: f64,
    pub sent_sigma: f64,
    pub recv_ratio: f64,
    pub bytes: f64,
    pub reconnects: f64,
    pub share: f64,
}

pub const PROFILES: [ProfileSpec; 4] = [
    ProfileSpec {
        name: "meters",
        rhythm: Rhythm::Flat,
        sent: 2.0,
        sent_sigma: 0.5,
        recv_ratio: 0.1,
        bytes: 180.0,
        reconnects: 0.002,
        share: 0.35,
    },
    ProfileSpec {
        name: "cameras",
        rhythm: Rhythm::Daylight,
        sent: 30.0,
        sent_sigma: 1.0,
        recv_ratio: 0.05,
        bytes: 12_000.0,
        reconnects: 0.004,
        share: 0.25,
    },
    ProfileSpec {
        name: "wearables",
        rhythm: Rhythm::Evening,
        sent: 5.0,
        sent_sigma: 0.8,
        recv_ratio: 0.5,
        bytes: 900.0,
        reconnects: 0.03,
        share: 0.25,
    },
    ProfileSpec {
        name: "gateways",
        rhythm: Rhythm::Office,
        sent: 200.0,
        sent_sigma: 1.2,
        recv_ratio: 0.3,
        bytes: 2_500.0,
        reconnects: 0.003,
        share: 0.15,
    },
];

pub fn rhythm(r: Rhythm, ts: i64) -> f64 {
    let h = (ts.rem_euclid(86_400)) as f64 / 3600.0;
    let weekend = ((ts.div_euclid(86_400) + 3).rem_euclid(7)) >= 5;
    let bump = |centre: f64, width: f64| (-((h - centre) / width).powi(2)).exp();
    match r {
        Rhythm::Flat => 1.0 + 0.2 * ((h - 12.0) / 24.0 * std::f64::consts::TAU).cos(),
        Rhythm::Daylight => {
            let d = 0.15 + 1.8 * bump(13.0, 4.0);
            if weekend {
                d * 0.7
            } else {
                d
            }
        }
        Rhythm::Evening => {
            let d = 0.1 + 0.6 * bump(8.0, 1.5) + 2.0 * bump(20.5, 2.0);
            if weekend {
                d * 1.3
            } else {
                d
            }
        }
        Rhythm::Office => {
            if weekend {
                0.3
            } else {
                0.25 + 2.2 * bump(13.0, 3.5)
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AttackKind {
    CredentialFast,
    CredentialSlow,
    PublishFlood,
    Exfiltration,
    ConnectionInstability,
    SlowDrift,
    TimeOfDay,
}

impl AttackKind {
    pub const ALL: [AttackKind; 7] = [
        AttackKind::CredentialFast,
        AttackKind::CredentialSlow,
        AttackKind::PublishFlood,
        AttackKind::Exfiltration,
        AttackKind::ConnectionInstability,
        AttackKind::SlowDrift,
        AttackKind::TimeOfDay,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::CredentialFast => "credential-fast",
            AttackKind::CredentialSlow => "credential-slow",
            AttackKind::PublishFlood => "publish-flood",
            AttackKind::Exfiltration => "exfiltration",
            AttackKind::ConnectionInstability => "conn-instability",
            AttackKind::SlowDrift => "slow-drift",
            AttackKind::TimeOfDay => "time-of-day",
        }
    }

    /// Burst attacks change a datapoint a lot from its first one.
    pub fn burst(self) -> bool {
        matches!(
            self,
            AttackKind::CredentialFast | AttackKind::PublishFlood | AttackKind::Exfiltration
        )
    }
}

#[derive(Clone, Debug)]
pub struct Attack {
    pub device: usize,
    pub kind: AttackKind,
    pub start: i64,
    pub end: i64,
    pub intensity: f64,
    /// The first datapoint the attack changed: its start, unless the
    /// device was offline then, or (exfiltration) sent no message to
    /// carry the larger size.
    pub first_seen: Option<i64>,
}

impl Attack {
    /// Whether the attack changes the datapoint at `ts`.
    fn active(&self, ts: i64) -> bool {
        if ts < self.start || ts >= self.end {
            return false;
        }
        if self.kind == AttackKind::TimeOfDay {
            // 01:00–04:00 every night of its span.
            let h = ts.rem_euclid(86_400) / 3600;
            return (1..4).contains(&h);
        }
        true
    }
}

pub struct Device {
    pub name: String,
    pub profile: usize,
    sent: f64,
    bytes: f64,
    reconnects: f64,
    auth: f64,
    pub first_day: i64,
    /// (from ts, factor): a legitimate, permanent change of volume.
    shift: Option<(i64, f64)>,
    /// Firmware update: from ts, more messages and larger ones.
    firmware: Option<i64>,
    day_factor: f64,
    hour_factor: f64,
    offline_until: i64,
    offline_since: i64,
    /// When the device came back from each outage (for the false-alarm
    /// breakdown).
    returns: Vec<i64>,
}

pub struct Fleet {
    pub devices: Vec<Device>,
    pub attacks: Vec<Attack>,
    /// (profile, first device index share, start, end): regional outages.
    outages: Vec<(usize, f64, i64, i64)>,
    pub benign_shifts: usize,
    rng: StdRng,
}

fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(1e-12..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub fn poisson(rng: &mut StdRng, lambda: f64) -> u64 {
    if lambda <= 0.0 {
        return 0;
    }
    if lambda > 40.0 {
        let x = lambda + normal(rng) * lambda.sqrt();
        return x.round().max(0.0) as u64;
    }
    let l = (-lambda).exp();
    let (mut k, mut p) = (0u64, 1.0);
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// The benign nuisances a false alarm may come from, most specific first.
pub const CAUSES: [&str; 7] = [
    "new device",
    "volume shift",
    "firmware",
    "back online",
    "chronic auth",
    "noise",
    "fleet",
];

impl Fleet {
    /// The simulator's own account of a false alarm on `device` at `ts`:
    /// which benign nuisance it sits in the wake of (a day, since the day
    /// window can carry one that long), else "noise".
    pub fn nuisance(&self, device: usize, ts: i64, metric: &str) -> &'static str {
        const DAY: i64 = 86_400;
        let d = &self.devices[device];
        let near = |at: i64, span: i64| ts >= at && ts < at + span;
        if d.first_day > 0 && ts < T0 + (d.first_day + 4) * DAY {
            return CAUSES[0];
        }
        if d.shift.is_some_and(|(at, _)| near(at, 4 * DAY)) {
            return CAUSES[1];
        }
        if d.firmware.is_some_and(|at| near(at, 2 * DAY)) {
            return CAUSES[2];
        }
        if d.returns.iter().any(|&at| near(at, DAY)) {
            return CAUSES[3];
        }
        if d.auth > 0.01 && metric.contains("authorization") {
            return CAUSES[4];
        }
        CAUSES[5]
    }
}

pub struct Row {
    pub ts: i64,
    pub device: usize,
    pub values: [f64; 7],
}

impl Fleet {
    /// `attack_from`: the first day attacks may start (models are ACTIVE by
    /// then).
    pub fn new(seed: u64, devices: usize, days: i64, attacks: usize, attack_from: i64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut list = Vec::with_capacity(devices);
        for i in 0..devices {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut profile = PROFILES.len() - 1;
            for (p, spec) in PROFILES.iter().enumerate() {
                acc += spec.share;
                if u < acc {
                    profile = p;
                    break;
                }
            }
            let spec = &PROFILES[profile];
            let sent = spec.sent * (spec.sent_sigma * normal(&mut rng)).exp();
            let bytes = spec.bytes * (0.5 * normal(&mut rng)).exp();
            let reconnects = spec.reconnects * (0.5 * normal(&mut rng)).exp();
            // 5% chronically fail authorization a little (a misconfigured topic).
            let auth = if rng.random::<f64>() < 0.05 {
                0.05
            } else {
                0.0005
            };
            let first_day = if days > 6 && rng.random::<f64>() < 0.03 {
                rng.random_range(3..days - 3)
            } else {
                0
            };
            let shift = (rng.random::<f64>() < 0.01).then(|| {
                let at =
                    T0 + rng.random_range(attack_from * PER_DAY..(days - 1) * PER_DAY) * PERIOD;
                (at, if rng.random::<bool>() { 3.0 } else { 0.3 })
            });
            list.push(Device {
                name: format!("{}-{i:05}", spec.name),
                profile,
                sent,
                bytes,
                reconnects,
                auth,
                first_day,
                shift,
                firmware: None,
                day_factor: 1.0,
                hour_factor: 1.0,
                offline_until: i64::MIN,
                offline_since: i64::MIN,
                returns: Vec::new(),
            });
        }
        let benign_shifts = list
            .iter()
            .filter(|d| d.shift.is_some_and(|s| s.1 > 1.0))
            .count();
        // Firmware rollout: cameras, in three waves of 15% on days 17–19.
        let wave_day = (attack_from + 3).min(days - 2);
        for d in list
            .iter_mut()
            .filter(|d| PROFILES[d.profile].name == "cameras")
        {
            if rng.random::<f64>() < 0.45 {
                let wave = rng.random_range(0..3);
                d.firmware = Some(T0 + (wave_day + wave) * 86_400 + 10 * 3600);
            }
        }
        // Regional outages: two per profile, 15% of its devices, 1–3 hours.
        let mut outages = Vec::new();
        for p in 0..PROFILES.len() {
            for _ in 0..2 {
                let start = T0 + rng.random_range(PER_DAY..(days - 1) * PER_DAY) * PERIOD;
                let len = rng.random_range(12..36) * PERIOD;
                outages.push((p, rng.random::<f64>() * 0.85, start, start + len));
            }
        }
        // Attacks on distinct established devices, kinds in turn.
        let mut attack_list = Vec::new();
        let mut used = std::collections::HashSet::new();
        let mut k = 0;
        while attack_list.len() < attacks && used.len() < devices {
            let dev = rng.random_range(0..devices);
            if list[dev].first_day > 0 || !used.insert(dev) {
                continue;
            }
            let kind = AttackKind::ALL[k % AttackKind::ALL.len()];
            k += 1;
            let (min_len, max_len) = match kind {
                AttackKind::CredentialFast => (3, 12),
                AttackKind::CredentialSlow => (288, 576),
                AttackKind::PublishFlood => (2, 12),
                AttackKind::Exfiltration => (6, 72),
                AttackKind::ConnectionInstability => (12, 48),
                AttackKind::SlowDrift => (4 * 288, 5 * 288),
                AttackKind::TimeOfDay => (2 * 288, 3 * 288),
            };
            let len = rng.random_range(min_len..=max_len);
            let latest = days * PER_DAY - len - 1;
            let first = attack_from * PER_DAY;
            if latest <= first {
                continue;
            }
            let mut start = rng.random_range(first..latest);
            if kind == AttackKind::TimeOfDay {
                // Begin at 01:00 so the first night counts.
                start = start - start.rem_euclid(PER_DAY) + 12;
            }
            let intensity = match kind {
                AttackKind::CredentialFast => rng.random_range(15.0..60.0),
                AttackKind::CredentialSlow => rng.random_range(0.2..0.5),
                AttackKind::PublishFlood => rng.random_range(8.0..30.0),
                AttackKind::Exfiltration => rng.random_range(4.0..15.0),
                AttackKind::ConnectionInstability => rng.random_range(2.0..8.0),
                AttackKind::SlowDrift => rng.random_range(3.0..5.0),
                AttackKind::TimeOfDay => 1.0,
            };
            attack_list.push(Attack {
                device: dev,
                kind,
                start: T0 + start * PERIOD,
                end: T0 + (start + len) * PERIOD,
                intensity,
                first_seen: None,
            });
        }
        Self {
            devices: list,
            attacks: attack_list,
            outages,
            benign_shifts,
            rng,
        }
    }

    /// Datapoints of period `ts`, device by device (offline devices have none).
    pub fn period(&mut self, ts: i64, out: &mut Vec<Row>) {
        out.clear();
        let new_day = ts.rem_euclid(86_400) == 0;
        let new_hour = ts.rem_euclid(3600) == 0;
        let day = (ts - T0).div_euclid(86_400);
        for i in 0..self.devices.len() {
            let rng = &mut self.rng;
            let d = &mut self.devices[i];
            if day < d.first_day {
                continue;
            }
            if new_day || d.day_factor == 1.0 {
                d.day_factor = (0.12 * normal(rng)).exp();
            }
            if new_hour || d.hour_factor == 1.0 {
                d.hour_factor = (0.1 * normal(rng)).exp();
            }
            let spec = &PROFILES[d.profile];
            // Regional outage or a device's own (1 in 25 device-days, 1–6 h).
            let regional = self.outages.iter().any(|(p, from, s, e)| {
                *p == d.profile && ts >= *s && ts < *e && {
                    let frac = (i as f64 * 0.618_034).fract();
                    frac >= *from && frac < from + 0.15
                }
            });
            if regional {
                if d.offline_until < ts {
                    d.offline_since = ts;
                }
                d.offline_until = d.offline_until.max(ts + PERIOD);
                continue;
            }
            if ts >= d.offline_until && rng.random::<f64>() < 1.0 / (25.0 * 288.0) {
                d.offline_since = ts;
                d.offline_until = ts + rng.random_range(12..72) * PERIOD;
            }
            if ts < d.offline_until {
                continue;
            }
            let back = d.offline_until == ts;
            if back {
                d.returns.push(ts);
            }
            let mut level = d.sent * rhythm(spec.rhythm, ts) * d.day_factor * d.hour_factor;
            let mut bytes = d.bytes;
            if let Some((at, f)) = d.shift {
                if ts >= at {
                    level *= f;
                }
            }
            if d.firmware.is_some_and(|at| ts >= at) {
                level *= 1.4;
                bytes *= 1.3;
            }
            let mut conn = poisson(rng, d.reconnects) as f64;
            let mut disc = poisson(rng, d.reconnects) as f64;
            let mut auth = poisson(rng, d.auth) as f64;
            let mut sent_level = level;
            if back {
                conn += 1.0 + poisson(rng, 0.5) as f64;
                // Buffered messages go out on reconnect.
                let away = ((ts - d.offline_since) / PERIOD).clamp(1, 12) as f64;
                sent_level += level * away * 0.3;
            }
            let mut size_factor = 1.0;
            for a in self
                .attacks
                .iter()
                .filter(|a| a.device == i && a.active(ts))
            {
                match a.kind {
                    AttackKind::CredentialFast => {
                        auth += poisson(rng, a.intensity) as f64;
                        conn += poisson(rng, 2.0) as f64;
                    }
                    AttackKind::CredentialSlow => auth += poisson(rng, a.intensity) as f64,
                    AttackKind::PublishFlood => sent_level *= a.intensity,
                    AttackKind::Exfiltration => size_factor = a.intensity,
                    AttackKind::ConnectionInstability => {
                        let n = poisson(rng, a.intensity) as f64;
                        conn += n;
                        disc += n;
                    }
                    AttackKind::SlowDrift => {
                        let p = (ts - a.start) as f64 / (a.end - a.start) as f64;
                        sent_level *= 1.0 + (a.intensity - 1.0) * p;
                    }
                    AttackKind::TimeOfDay => {
                        // Daytime volume at night.
                        sent_level = sent_level.max(d.sent * 1.8 * d.day_factor).max(10.0);
                    }
                }
            }
            let sent = poisson(rng, sent_level) as f64;
            let recv = poisson(rng, level * spec.recv_ratio) as f64;
            let (mean, max) = if sent > 0.0 {
                let m = bytes * size_factor * (0.1 * normal(rng)).exp();
                let spread = 1.0 + 0.25 * normal(rng).abs() * (1.0 + sent.ln()).min(3.0);
                (m.round(), (m * spread).round())
            } else {
                (0.0, 0.0)
            };
            for a in self
                .attacks
                .iter_mut()
                .filter(|a| a.device == i && a.first_seen.is_none() && a.active(ts))
            {
                if a.kind != AttackKind::Exfiltration || sent > 0.0 {
                    a.first_seen = Some(ts);
                }
            }
            out.push(Row {
                ts,
                device: i,
                values: [auth, conn, disc, sent, recv, mean, max],
            });
        }
    }
}
