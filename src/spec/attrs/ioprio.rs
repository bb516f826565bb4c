//! `process.ioPriority` as the value ioprio_set(2) takes.
use anyhow::{bail, Result};
use oci_spec::runtime::{IOPriorityClass as C, LinuxIOPriority};

pub const CLASS_SHIFT: u16 = 13;

/// The classes, by spec name, with the kernel's numbers.
pub const CLASSES: [(&str, u16); 3] = [
    ("IOPRIO_CLASS_RT", 1),
    ("IOPRIO_CLASS_BE", 2),
    ("IOPRIO_CLASS_IDLE", 3),
];

/// The ioprio value: class << 13 | level.
pub fn from_spec(p: &LinuxIOPriority) -> Result<u16> {
    let class = match p.class() {
        C::IoprioClassRt => CLASSES[0].1,
        C::IoprioClassBe => CLASSES[1].1,
        C::IoprioClassIdle => CLASSES[2].1,
    };
    let level = p.priority();
    if !(0..=7).contains(&level) {
        bail!("priority: {level} is outside 0..7");
    }
    Ok(class << CLASS_SHIFT | level as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let p = |j| from_spec(&serde_json::from_str(j).unwrap());
        assert_eq!(
            p(r#"{"class":"IOPRIO_CLASS_BE","priority":3}"#).unwrap(),
            2 << 13 | 3
        );
        assert_eq!(
            p(r#"{"class":"IOPRIO_CLASS_RT","priority":0}"#).unwrap(),
            1 << 13
        );
        assert_eq!(
            p(r#"{"class":"IOPRIO_CLASS_IDLE","priority":7}"#).unwrap(),
            3 << 13 | 7
        );
        assert!(p(r#"{"class":"IOPRIO_CLASS_BE","priority":8}"#).is_err());
        assert!(p(r#"{"class":"IOPRIO_CLASS_BE","priority":-1}"#).is_err());
    }
}
